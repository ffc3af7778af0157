"""The shop's past slices and the estimators fitted to them, for instant prices of printed parts.

``slice_records`` keeps each part PrusaSlicer sliced for a quote (product, printer, filament, profile digest, the part's
features, print time and filament for one copy); ``slice_models`` the least-squares model fitted to each
printer, filament and profile's records (with each product's own scale on it), refitted as slices come in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slice_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("printer", sa.String(length=100), nullable=False),
        sa.Column("material", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("part_key", sa.String(length=128), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("print_time_s", sa.Float(), nullable=False),
        sa.Column("filament_g", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slice_records")),
        sa.UniqueConstraint("printer", "material", "profile", "part_key", name="uq_slice_records_part"),
    )
    op.create_index("ix_slice_records_group", "slice_records", ["printer", "material", "profile", "template"])
    op.create_table(
        "slice_models",
        sa.Column("printer", sa.String(length=100), nullable=False),
        sa.Column("material", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("slices", sa.Integer(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("printer", "material", "profile", name=op.f("pk_slice_models")),
    )


def downgrade() -> None:
    op.drop_table("slice_models")
    op.drop_index("ix_slice_records_group", table_name="slice_records")
    op.drop_table("slice_records")
