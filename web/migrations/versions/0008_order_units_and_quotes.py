"""The unit system each order's customer reads lengths in, the quote each item was ordered at, and why a
part was cancelled.

``orders.units`` (mm, cm, in or ft; existing orders: mm) writes every length the customer reads of the
order (confirmation, tracking, job sheet) in their units; the parameters stay in mm. ``order_items.quote``
keeps the price and per-part machine times shown at checkout, so the later pages show the same figures.
``jobs.cancel_reason`` is what staff tell the customer when they cancel a part.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("units", sa.String(length=8), server_default="mm", nullable=False))
    with op.batch_alter_table("order_items") as batch:
        batch.add_column(sa.Column("quote", sa.JSON(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cancel_reason")
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("quote")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("units")
