"""Every PostgreSQL advisory lock id the hub takes, in one place.

Advisory locks share one number space per database: two uses that picked the same
number by accident would block each other, or serialise what should not be. Pick a
new id here, never inline.
"""

from __future__ import annotations

# Schema creation by transfers' store, as hub versions before the migrations did it;
# revision 0001 takes it too, so an older transfers starting during an upgrade waits.
TRANSFERS_SCHEMA = 727001
# The same for the access log's table, created by the tools before the migrations.
ACCESS_LOG_SCHEMA = 727002
# Binding a database to one Kafka cluster and namespace (hub_binding).
BINDING = 727003
# `sendhub db upgrade`: one upgrade at a time per database.
MIGRATIONS = 727004
# One publisher per outbox (services/shared/lease.py): held for a process's lifetime.
RECORDS_OUTBOX = 727011
RECORDS_ANCHORS = 727013
TRANSFERS_OUTBOX = 727012
# The gateway's webhook deliveries: one round at a time across gateway processes.
GATEWAY_WEBHOOKS = 727021

# One erasure (or retention run) rewrites the hub's topics at a time.
TOPIC_PURGE = 727031
