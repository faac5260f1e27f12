"""The `sendhub` commands, grouped by who uses them.

`receiving` serves receiving settings (packets, inboxes, receipts), `auditing` serves
auditors (history, verification, the access log, the report) and `operations` serves
whoever runs the hub (services, publishing, deliveries, the registry, dead letters, the
demo, the database). `sendhub.cli` assembles them into one program; `common` holds what
they share. Modules import their heavy dependencies inside each command, because every
`sendhub` call pays for what the assembly imports.
"""
