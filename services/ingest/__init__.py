"""Ingest: the hub's front door for school systems.

Consumes `sen.school-events.v1`; publishes what validates to `sen.accepted.v1` (keyed by
UPN) and everything else to `sen.rejected.v1` with the original bytes, the reasons and
the source position. Nothing is dropped, whatever arrives.
"""
