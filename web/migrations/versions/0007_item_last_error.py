"""Order items keep the staff's detail of their last fault apart from what the customer reads.

``reason`` is shown to the customer (a kernel's plain reason, or "we could not prepare the
files"); ``last_error`` is for staff only: the fault's detail, which may name server paths,
exception types or a worker (a full disk, a read-only folder, a timeout, a killed worker).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("last_error")
