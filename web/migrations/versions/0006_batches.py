"""Batches: ready jobs of one machine and material made together on shared sheets or plates, with their
sheets (plates) and each copy's placement; jobs name the batch they are in and keep what batching read of
their part.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(80), nullable=False),
        sa.Column("process", sa.String(8), nullable=False),
        sa.Column("material", sa.String(32), nullable=False),
        sa.Column("thickness_mm", sa.Float(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("utilisation", sa.Float(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("engine", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'closed', 'sent', 'running', 'done', 'failed')",
                           name=op.f("ck_batches_state")),
        sa.CheckConstraint("process IN ('fdm', 'cnc')", name=op.f("ck_batches_process")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index(op.f("ix_batches_machine"), "batches", ["machine"])
    op.create_table(
        "batch_sheets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("length_mm", sa.Float(), nullable=False),
        sa.Column("width_mm", sa.Float(), nullable=False),
        sa.Column("utilisation", sa.Float(), nullable=False),
        sa.Column("used_length_mm", sa.Float(), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=True),
        sa.Column("picture", sa.String(1024), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("estimates", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_batch_sheets_batch_id"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_sheets")),
        sa.UniqueConstraint("batch_id", "index", name=op.f("uq_batch_sheets_batch_id")),
    )
    op.create_index(op.f("ix_batch_sheets_batch_id"), "batch_sheets", ["batch_id"])
    op.create_table(
        "batch_placements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("copy", sa.Integer(), nullable=False),
        sa.Column("x_mm", sa.Float(), nullable=False),
        sa.Column("y_mm", sa.Float(), nullable=False),
        sa.Column("rotation_deg", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["sheet_id"], ["batch_sheets.id"], name=op.f("fk_batch_placements_sheet_id"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_batch_placements_job_id"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_placements")),
    )
    op.create_index(op.f("ix_batch_placements_sheet_id"), "batch_placements", ["sheet_id"])
    op.create_index(op.f("ix_batch_placements_job_id"), "batch_placements", ["job_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("batching", sa.JSON(), nullable=True))
        batch.create_index(op.f("ix_jobs_batch_id"), ["batch_id"])
        batch.create_foreign_key(op.f("fk_jobs_batch_id"), "batches", ["batch_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("fk_jobs_batch_id"), type_="foreignkey")
        batch.drop_index(op.f("ix_jobs_batch_id"))
        batch.drop_column("batching")
        batch.drop_column("batch_id")
    op.drop_index(op.f("ix_batch_placements_job_id"), table_name="batch_placements")
    op.drop_index(op.f("ix_batch_placements_sheet_id"), table_name="batch_placements")
    op.drop_table("batch_placements")
    op.drop_index(op.f("ix_batch_sheets_batch_id"), table_name="batch_sheets")
    op.drop_table("batch_sheets")
    op.drop_index(op.f("ix_batches_machine"), table_name="batches")
    op.drop_table("batches")
