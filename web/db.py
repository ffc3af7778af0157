"""The database: engine, sessions and migrations (the tables themselves are in :mod:`web.models`).

SQLite (a file in the instance folder) by default, PostgreSQL when ``DATABASE_URL`` says
``postgresql+psycopg://...``. The schema is created and changed only by the Alembic
migrations in ``web/migrations``; :meth:`Database.upgrade` applies them and is safe to call
from several processes at once. Times are naive UTC.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

MIGRATION_LOCK_ID = 7_346_001  # PostgreSQL advisory lock held while migrating


def _sqlite_setup(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys; writers start with BEGIN IMMEDIATE so they never deadlock."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """Engine and sessions for one database URL; a forked process gets its own engine."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._pid: int | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)  # the parent's connections stay the parent's
            self._engine = self._create_engine()
            self._pid = os.getpid()
        return self._engine

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"timeout": 60}, pool_size=8, max_overflow=16)
            _sqlite_setup(engine)
            return engine
        return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    def session(self) -> Session:
        """A session for reading (commit it yourself if you write)."""
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a write transaction, committed at the end of the block (rolled back on error)."""
        bind = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision`` (the newest by default); concurrent callers wait for one another.

        On SQLite, foreign keys are off while migrating: a migration in batch mode rebuilds a table (copies
        it and drops the original), and with them on, the drop would delete every row referring to it
        (``ON DELETE CASCADE``). They are checked before the migration commits, and on again afterwards.
        """
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "web:migrations")
        engine = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        with engine.connect() as connection:
            if self.is_sqlite:  # outside a transaction: SQLite ignores this pragma inside one
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
                    if self.is_sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"the migration to {revision} left rows whose foreign key points "
                                               f"nowhere (table, row, parent): {broken[:5]}")
            finally:
                if self.is_sqlite:
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None
