"""Check constraints under the names the models give them: ``ck_<table>_<name>``.

0001 and 0002 passed names that already carried the ``ck_<table>_`` prefix, and the metadata's
naming convention added it once more, so the databases hold ``ck_order_items_ck_order_items_state``
and the like. Alembic's comparison does not look at check constraints, so nothing flagged it; a
later migration dropping one under the models' name would not find it.

On SQLite a constraint cannot be renamed: the table is rebuilt (copied, the original dropped),
with foreign keys off while migrating (``Database.upgrade``) so no row referring to it is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHECKS = {
    "order_items": {
        "state": "state IN ('queued', 'rendering', 'ready', 'failed')",
        "quantity": "quantity >= 1",
    },
    "jobs": {
        "state": "state IN ('queued', 'slicing', 'ready', 'sent', 'printing', 'done', 'failed', 'cancelled')",
        "kind": "kind IN ('fdm', 'cnc')",
    },
}


def _rename(old: str, new: str) -> None:
    """``old`` and ``new`` are name patterns with ``{table}`` and ``{name}``."""
    if op.get_bind().dialect.name == "postgresql":
        for table, checks in CHECKS.items():
            for name in checks:
                op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old.format(table=table, name=name)} "
                           f"TO {new.format(table=table, name=name)}")
        return
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for name, condition in checks.items():
                batch.drop_constraint(op.f(old.format(table=table, name=name)), type_="check")
                batch.create_check_constraint(op.f(new.format(table=table, name=name)), condition)


def upgrade() -> None:
    _rename("ck_{table}_ck_{table}_{name}", "ck_{table}_{name}")


def downgrade() -> None:
    _rename("ck_{table}_{name}", "ck_{table}_ck_{table}_{name}")
