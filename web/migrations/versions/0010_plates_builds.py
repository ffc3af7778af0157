"""Builds of a new kind, ``plates``: print-ready plates for a customer's own printer, made by a worker.

Until now plates were recorded as ``picture`` builds (the only kinds 0005's check allowed were ``preview``,
``quote`` and ``picture``), so the staff queue counted them among the catalog's pictures. The check is widened
to ``plates``; on SQLite the table is rebuilt to change it (as 0003 does).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = "kind IN ('preview', 'quote', 'picture')"
AFTER = "kind IN ('preview', 'quote', 'picture', 'plates')"


def _check(condition: str) -> None:
    with op.batch_alter_table("builds", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_builds_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_builds_kind"), condition)


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM builds WHERE kind = 'plates'")
    _check(BEFORE)
