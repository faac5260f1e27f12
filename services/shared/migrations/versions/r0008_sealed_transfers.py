"""Transfers' copies of pupils' histories and packets sealed with each pupil's data key.

`transfers_history.sealed` and `transfers_packets.sealed` hold the whole history message
and the whole packet, sealed with the pupil's key (`services/transfers/sealed_rows.py`);
`event` and `body` keep only what SQL routes and lists by: a history event's type,
source and dates; a packet's settings, move (without the admissions reference), kind
and versions. Nothing about the pupil (name, UPN, date of birth, needs, plans, texts) is
left plain, but the `upn` column transfers finds a pupil's rows by, which erasure
replaces by the pupil's pseudonym (revision 0007).

This migration cannot seal the rows already stored (the keys are not in SQL): they keep
their whole packet or message plain in `body`/`event`, with `sealed` NULL, and every
reader still reads them. `sendhub db seal-existing` (the owner, with the master key)
seals them; `sendhub db upgrade` says how many are left.

No grant changes: the roles' privileges on both tables are table-wide (revision 0003),
so transfers inserts `sealed` and the gateway and the reader select it already.

Revision ID: 0008_sealed_transfers
Revises: 0007_pupil_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008_sealed_transfers"
down_revision = "0007_pupil_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE transfers_history ADD COLUMN sealed bytea")
    op.execute("ALTER TABLE transfers_packets ADD COLUMN sealed bytea")


def downgrade() -> None:
    # Sealed rows' content is only in `sealed`: dropping it loses their pupils' data.
    op.execute("ALTER TABLE transfers_packets DROP COLUMN sealed")
    op.execute("ALTER TABLE transfers_history DROP COLUMN sealed")
