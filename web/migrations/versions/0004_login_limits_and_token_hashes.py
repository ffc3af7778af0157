"""Order tokens kept only as SHA-256 hashes; idempotency keys scoped to a client, with the order's token
sealed for its replays; rate limits (staff logins, orders per client); a session version per staff user.

Existing plain tokens are hashed in place, so every tracking link already sent keeps working. Keys
made before this migration belong to no client (``""``): a replay of one is refused until it expires.
A downgrade cannot give the tokens back (only their hashes are kept): the old ``token`` column then
holds the hash, and links made before the downgrade stop opening their orders.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
    orders = sa.table("orders", sa.column("id", sa.String), sa.column("token", sa.String),
                      sa.column("token_hash", sa.String))
    connection = op.get_bind()
    for order_id, token in connection.execute(sa.select(orders.c.id, orders.c.token)).all():
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        connection.execute(orders.update().where(orders.c.id == order_id).values(token_hash=digest))
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("token_hash", existing_type=sa.String(64), nullable=False)
        batch.drop_column("token")

    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("client", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("sealed_token", sa.String(128), nullable=True))
        batch.create_index("ix_idempotency_keys_created_at", ["created_at"])
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("client", existing_type=sa.String(64), server_default=None)

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("session_version", existing_type=sa.Integer(), server_default=None)

    op.create_table(
        "rate_limits",
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("scope", "subject", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_index("ix_idempotency_keys_created_at")
        batch.drop_column("sealed_token")
        batch.drop_column("client")
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("token_hash", new_column_name="token", existing_type=sa.String(64), nullable=False)
