"""The database: orders, their items, generated artifacts, idempotency keys and staff users.

SQLite (a file in the instance folder) by default, PostgreSQL when ``DATABASE_URL`` says
``postgresql+psycopg://...``. The schema is created and changed only by the Alembic
migrations in ``web/migrations``; :meth:`Database.upgrade` applies them and is safe to call
from several processes at once. Times are naive UTC.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

ITEM_STATES = ("queued", "rendering", "ready", "failed")
MIGRATION_LOCK_ID = 7_346_001  # PostgreSQL advisory lock held while migrating


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form every time column holds)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    })


class Order(Base):
    """A customer's order: who ordered, and the secret token that lets them read it."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    items: Mapped[list[OrderItem]] = relationship(back_populates="order", order_by="OrderItem.position",
                                                  cascade="all, delete-orphan")


class OrderItem(Base):
    """One configured product in an order, and the state of generating its files.

    ``state`` goes queued → rendering → ready, or → failed with ``reason``. While rendering,
    the worker holding it (``lease_owner``) renews ``lease_expires_at``; an item whose lease
    expired is queued again (its worker died), up to ``RENDER_ATTEMPTS`` claims.
    """

    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "position"),
        CheckConstraint("state IN ('queued', 'rendering', 'ready', 'failed')", name="state"),
        CheckConstraint("quantity >= 1", name="quantity"),
        Index("ix_order_items_state_lease", "state", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # canonical: mm and degrees
    quantity: Mapped[int] = mapped_column(Integer)
    material: Mapped[str] = mapped_column(String(32))
    cache_key: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    rendered_by: Mapped[str | None] = mapped_column(String(128))  # host:pid:claim of the worker that finished it
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    render_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    order: Mapped[Order] = relationship(back_populates="items")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="item", order_by="Artifact.id",
                                                     cascade="all, delete-orphan")


class Artifact(Base):
    """A file generated for an item; ``path`` is relative to the output folder."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("item_id", "filename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    part: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    item: Mapped[OrderItem] = relationship(back_populates="artifacts")


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` header already answered: the request it came with and the order it made."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    """A staff account; the password is stored only as a werkzeug hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


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

    def upgrade(self) -> None:
        """Apply the migrations up to the newest; concurrent callers wait for one another."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "web:migrations")
        engine = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None

from . import jobs as _jobs  # noqa: E402,F401  (their tables register on Base)
