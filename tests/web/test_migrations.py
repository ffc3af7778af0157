"""The migrations build exactly the schema of ``web.models``, on SQLite and on PostgreSQL: Alembic's
autogenerate comparison, configured as ``web/migrations/env.py`` configures it, proposes nothing. A
database made by older migrations keeps its rows when it is brought up to date."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from web.db import Database
from web.models import Artifact, Base, Build, IdempotencyKey, Job, MachineRow, Order, OrderItem, RateLimit, User
from web.orders import tokens

from .live import postgres_database

PLAIN_TOKEN = "t" * 43


def proposed_changes(database: Database) -> list[Any]:
    """What ``alembic revision --autogenerate`` would put in a new migration for this database."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "target_metadata": Base.metadata, "compare_type": True,
            "render_as_batch": connection.dialect.name == "sqlite"})
        return compare_metadata(context, Base.metadata)


def check_constraint_names(database: Database) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The check constraints per table, in the database and in the models (autogenerate does not compare
    them: 0001 and 0002 made them under doubled names, ``ck_jobs_ck_jobs_state``, until 0003)."""
    inspector = inspect(database.engine)
    stored = {table: sorted(c["name"] for c in inspector.get_check_constraints(table))
              for table in Base.metadata.tables}
    modelled = {table.name: sorted(c.name for c in table.constraints if isinstance(c, CheckConstraint))
                for table in Base.metadata.tables.values()}
    return stored, modelled


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def test_autogenerate_proposes_no_change_after_the_migrations(database):
    database.upgrade()
    assert proposed_changes(database) == []
    assert set(inspect(database.engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    stored, modelled = check_constraint_names(database)
    assert stored == modelled


def test_the_models_hold_every_table():
    """The migrations see every model: web.models alone registers them all (none left in another module)."""
    assert set(Base.metadata.tables) == {"orders", "order_items", "artifacts", "idempotency_keys", "users",
                                         "machines", "jobs", "rate_limits", "builds", "workers", "batches",
                                         "batch_sheets", "batch_placements", "slice_records", "slice_models"}


def _fill(database: Database) -> None:
    """One row in every table, as a shop running migration 0002 would have them (plain SQL: the models have
    columns later migrations add)."""
    now = "2026-01-01 00:00:00"
    rows = [
        ("orders", {"id": "o1", "token": PLAIN_TOKEN, "customer_name": "Ada", "customer_email": "ada@example.com",
                    "created_at": now}),
        ("order_items", {"id": 1, "order_id": "o1", "position": 0, "template": "wall_shelf",
                         "template_version": "1.0.0", "params": '{"width": 600.0}', "quantity": 2, "material": "pla",
                         "state": "ready", "attempts": 0, "created_at": now}),
        ("artifacts", {"item_id": 1, "format": "stl", "part": "shelf", "filename": "shelf.stl",
                       "path": "orders/o1/0/shelf.stl", "bytes": 1234, "sha256": "0" * 64}),
        ("users", {"name": "ada", "password_hash": "x", "created_at": now}),
        ("machines", {"name": "mk3", "kind": "printer", "record": '{"kind": "printer", "name": "mk3"}',
                      "created_at": now}),
        ("idempotency_keys", {"key": "k1", "request_hash": "1" * 64, "order_id": "o1", "created_at": now}),
        ("jobs", {"item_id": 1, "part": "shelf", "kind": "fdm", "machine": "mk3", "state": "sent", "progress": 12.5,
                  "estimates": '{"print_time_s": 60}', "files": '{"gcode": "/x.gcode"}', "attempts": 0,
                  "created_at": now, "updated_at": now}),
    ]
    with database.engine.begin() as connection:
        for table, values in rows:
            names = ", ".join(f'"{name}"' for name in values)
            connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in values)})"),
                               values)
    if not database.is_sqlite:  # the serial sequences move past the ids given
        with database.engine.begin() as connection:
            connection.execute(text("SELECT setval('order_items_id_seq', 1)"))


def _counts(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Order, OrderItem, Artifact, IdempotencyKey, User, MachineRow, Job)}


def test_a_database_from_older_migrations_keeps_its_rows(database):
    """0003 rebuilds order_items and jobs on SQLite; the rows referring to them (artifacts, jobs) stay."""
    database.upgrade("0002")
    _fill(database)
    before = _counts(database)
    assert set(before.values()) == {1}
    database.upgrade()
    assert _counts(database) == before
    assert proposed_changes(database) == []
    stored, modelled = check_constraint_names(database)
    assert stored == modelled
    with database.session() as session:
        job = session.scalars(select(Job)).one()
        assert (job.state, job.progress, job.estimates) == ("sent", 12.5, {"print_time_s": 60})
        order = session.get(Order, "o1")  # 0004: the plain token is now only its hash, and still opens the order
        assert order.token_hash == tokens.token_hash(PLAIN_TOKEN) and tokens.matches(order.token_hash, PLAIN_TOKEN)
        assert PLAIN_TOKEN not in repr(session.execute(text("SELECT * FROM orders")).all())
        key = session.get(IdempotencyKey, "k1")
        assert (key.client, key.sealed_token) == ("", None)  # a key of no client: its replays are refused
        assert session.scalars(select(User.session_version)).one() == 1
        assert session.scalar(select(func.count()).select_from(RateLimit)) == 0
    with database.engine.connect() as connection:
        if database.is_sqlite:  # foreign keys are back on for the app after migrating with them off
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with database.transaction() as session:  # and the cascades still work
        session.delete(session.get(Order, "o1"))
    assert _counts(database) == {**before, "orders": 0, "order_items": 0, "artifacts": 0, "idempotency_keys": 0,
                                 "jobs": 0}


def test_the_check_constraints_hold_after_the_rename(database):
    database.upgrade()
    with pytest.raises(IntegrityError), database.transaction() as session:
        order = Order(id="o2", token_hash="t", customer_name="Ada", customer_email="ada@example.com")
        session.add(OrderItem(order=order, position=0, template="wall_shelf", template_version="1.0.0", params={},
                              quantity=0, material="pla"))


def test_builds_take_plates_after_0010_and_keep_their_rows(database):
    """0010 widens the builds' kind check to ``plates`` (a customer's own-printer plates, made by a worker); on
    SQLite the table is rebuilt, and the builds already there stay. Other kinds are still refused."""
    database.upgrade("0009")
    with database.transaction() as session:
        session.add(Build(key="p1", kind="picture", request={"template": "leg_cap"}))
    with pytest.raises(IntegrityError), database.transaction() as session:
        session.add(Build(key="p2", kind="plates", request={"order": "o1"}))
    database.upgrade()
    assert proposed_changes(database) == []
    with database.transaction() as session:
        session.add(Build(key="p2", kind="plates", request={"order": "o1"}))
    with database.session() as session:
        assert {build.key: build.kind for build in session.scalars(select(Build))} == {"p1": "picture",
                                                                                       "p2": "plates"}
    with pytest.raises(IntegrityError), database.transaction() as session:
        session.add(Build(key="p3", kind="sculpture", request={}))
