"""The migrations build exactly the models' schema, and several processes may apply them at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from web.config import load_config
from web.db import Database
from web.models import Base


def schema_differences(database: Database) -> list:
    with database.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)


def test_the_migrations_build_the_models_schema(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'shop.db'}")
    database.upgrade()
    assert schema_differences(database) == []
    assert set(inspect(database.engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    database.upgrade()  # a second start changes nothing
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def _upgrade(url: str) -> None:
    Database(url).upgrade()


def test_concurrent_starts_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_upgrade, args=(url,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert schema_differences(Database(url)) == []


def test_default_storage_is_in_the_instance_folder(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "PARAMETRIC_HUEY_FILE", "PARAMETRIC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARAMETRIC_INSTANCE", str(tmp_path / "inst"))
    monkeypatch.setenv("PARAMETRIC_LEASE_SECONDS", "30")
    monkeypatch.setenv("PARAMETRIC_SETUP_FEE", '{"fdm": 1, "cnc": 2}')
    config = load_config()
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'inst' / 'parametric.db'}"
    assert Path(config["HUEY_FILE"]) == tmp_path / "inst" / "queue.db" and config["REDIS_URL"] is None
    assert config["LEASE_SECONDS"] == 30 and config["SETUP_FEE"] == {"fdm": 1, "cnc": 2}
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://shop@db.example/orders")
    monkeypatch.setenv("REDIS_URL", "redis://queue.example:6379/0")
    config = load_config({"LEASE_SECONDS": 5})
    assert config["DATABASE_URL"].startswith("postgresql+psycopg://") and config["REDIS_URL"].startswith("redis://")
    assert config["LEASE_SECONDS"] == 5  # a test mapping wins over the environment
