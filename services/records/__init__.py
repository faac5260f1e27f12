"""Records: each pupil's append-only SEN history, event-sourced on PostgreSQL.

Consumes `sen.accepted.v1`; stores each school event in the pupil's history (one
eventsourcing stream per pupil, id = uuid5 of the UPN) together with the consumed
Kafka position, in one transaction; relays every stored event, in order, to
`sen.pupil-history.v1` through the notification log (an outbox).
"""
