"""The HTTPS gateway: schools, post-16 providers, local authorities, trusts and auditors
whose systems speak HTTPS rather than Kafka (`sendhub serve gateway`).

Edge adapter, like the CLI: it authenticates the caller (the hub's bearer tokens or a
trust's OpenID Connect JWTs), decides with `services.shared.access` and nothing else,
publishes events and receipts to the gateway's own inbound topics with the caller's
name in the `sendhub-principal` header (ingest and transfers check it again), and reads
packets, transfers and histories from PostgreSQL as the tools do, writing every read of
a pupil's record to the access log with route `https`. Modules: `app` (the FastAPI app
and its lifespan), `routes` and `reading` (endpoints), `auth`, `problems` (RFC 9457),
`ratelimit`, `signing` and `webhooks` (pushing packets), `store` (SQL), `server`.
"""
