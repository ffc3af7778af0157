"""Builds asked for by pages (previews, quotes, catalog pictures; built by workers, never by a request thread)
and the workers' heartbeats.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_builds_state")),
        sa.CheckConstraint("kind IN ('preview', 'quote', 'picture')", name=op.f("ck_builds_kind")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_builds")),
    )
    op.create_index("ix_builds_kind_finished", "builds", ["kind", "finished_at"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("host", sa.String(100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("task", sa.String(64), nullable=True),
        sa.Column("task_args", sa.JSON(), nullable=True),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("task_priority", sa.Integer(), nullable=True),
        sa.Column("task_started_at", sa.DateTime(), nullable=True),
        sa.Column("tasks_done", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_builds_kind_finished", table_name="builds")
    op.drop_table("builds")
