"""Transfers: builds and delivers the transfer packet when a pupil moves.

Consumes `sen.pupil-history.v1` into its own projection in PostgreSQL (with the consumed
positions in the same transaction); on `pupil_moved` builds the packet from the history
as it stood at the move, stores it, then publishes it to the receiving setting's inbox
topic (`sen.inbox.urn-<URN>` or `sen.inbox.ukprn-<UKPRN>`); a pupil with no known
destination goes to the leaving school's LA (`sen.inbox.lost-pupils.la-<code>`, a
children-missing-education notice), and an EHC plan that moves to another LA is also
sent to both LAs' own inboxes (`sen.inbox.la-<code>`).
"""
