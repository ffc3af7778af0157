"""Every table of the web app, in one place: orders, their items, generated artifacts, idempotency
keys, rate limits, staff users, machines, manufacturing jobs, the batches (sheets and plates) they are
made in, the builds pages ask workers for (previews, quotes, catalog pictures) and the workers' heartbeats.

The migrations in ``web/migrations`` compare against :data:`Base.metadata`, so a model defined
here is one the autogenerate comparison sees. Times are naive UTC (:func:`utcnow`).
"""

from __future__ import annotations

from datetime import UTC, datetime
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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ITEM_STATES = ("queued", "rendering", "ready", "failed")


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
    """A customer's order: who ordered, and the SHA-256 of the secret token that lets them read it (the token
    itself is given to the customer once and never stored: ``web.orders.tokens``)."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_email: Mapped[str] = mapped_column(String(254))
    units: Mapped[str] = mapped_column(String(8), default="mm", server_default="mm")
    """The unit system the customer reads lengths in (mm, cm, in or ft); parameters are kept in mm."""
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
    reason: Mapped[str | None] = mapped_column(Text)  # what the customer reads of a failure: plain words
    last_error: Mapped[str | None] = mapped_column(Text)  # staff only: the last fault's detail (paths, worker)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    rendered_by: Mapped[str | None] = mapped_column(String(128))  # host:pid:claim of the worker that finished it
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    render_seconds: Mapped[float | None] = mapped_column(Float)
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the quote it was ordered at (shop checkout)
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
    """An ``Idempotency-Key`` header already answered: the client that sent it, the request it came with, the
    order it made and that order's token sealed for a replay by the same client (``web.orders.placing``).
    A key expires ``IDEMPOTENCY_HOURS`` after it was first used."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    sealed_token: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class RateLimit(Base):
    """One counter of a rate limit (``web.limits``): hits in the current window per scope and subject (the
    SHA-256 of a client's address or an account's name), and how long the subject is locked out."""

    __tablename__ = "rate_limits"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class User(Base):
    """A staff account; the password is stored only as a werkzeug hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped at logout: older sessions end
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MachineRow(Base):
    """A machine: ``name`` (unique), ``kind`` (printer or router) and the core's record of it."""

    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Job(Base):
    """One part of an order item on one machine (one plate of it, when its copies need several): state,
    progress, estimates, files and retries."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'slicing', 'ready', 'sent', 'printing', 'done', 'failed', "
                        "'cancelled')", name="state"),
        CheckConstraint("kind IN ('fdm', 'cnc')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"), index=True)
    part: Mapped[str] = mapped_column(String(64))
    machine: Mapped[str | None] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    estimates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)  # staff's words to the customer for a cancelled part
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"), index=True)
    """The batch the job is made in (its sheets or plates), if it was gathered into one."""
    batching: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What batching needs of the job's part, read once from its files: material (and sheet thickness), copies,
    and its true outline with holes (CNC) or footprint and height (printers), in mm."""


BATCH_STATES = ("open", "closed", "sent", "running", "done", "failed")


class Batch(Base):
    """Ready jobs of one machine and one material (stock and thickness for a router, filament for a printer) made
    together on shared sheets or plates. ``state`` goes open → closed → sent → running → done, or failed;
    ``close_reason`` says which policy closed it (utilisation, ship date, staff), in plain words."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint("state IN ('open', 'closed', 'sent', 'running', 'done', 'failed')", name="state"),
        CheckConstraint("process IN ('fdm', 'cnc')", name="process"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine: Mapped[str] = mapped_column(String(80), index=True)
    process: Mapped[str] = mapped_column(String(8))
    material: Mapped[str] = mapped_column(String(32))
    thickness_mm: Mapped[float | None] = mapped_column(Float)  # CNC stock thickness; None for a printer
    state: Mapped[str] = mapped_column(String(16), default="open")
    utilisation: Mapped[float | None] = mapped_column(Float)  # the parts' area over the sheets' (plates') area
    close_reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(String(64))  # what laid it out (nesting engine or plate packer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    sheets: Mapped[list[BatchSheet]] = relationship(back_populates="batch", order_by="BatchSheet.index",
                                                    cascade="all, delete-orphan")


class BatchSheet(Base):
    """One sheet (router) or plate (printer) of a batch: its share used, its picture and drawing, its estimates
    (machining or print time, filament) and its files (G-code once made)."""

    __tablename__ = "batch_sheets"
    __table_args__ = (UniqueConstraint("batch_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # 1-based, in making order
    length_mm: Mapped[float] = mapped_column(Float)
    width_mm: Mapped[float] = mapped_column(Float)
    utilisation: Mapped[float] = mapped_column(Float)
    used_length_mm: Mapped[float] = mapped_column(Float)
    time_s: Mapped[float | None] = mapped_column(Float)  # machining or print time, when known (slicer, toolpaths)
    picture: Mapped[str | None] = mapped_column(String(1024))  # PNG, absolute path inside the output folder
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    estimates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    batch: Mapped[Batch] = relationship(back_populates="sheets")
    placements: Mapped[list[BatchPlacement]] = relationship(back_populates="sheet", order_by="BatchPlacement.id",
                                                            cascade="all, delete-orphan")


class BatchPlacement(Base):
    """Where one copy of a job's part goes on its sheet or plate: its own coordinates turned by ``rotation_deg``
    about their origin, then moved by (``x_mm``, ``y_mm``)."""

    __tablename__ = "batch_placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("batch_sheets.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    copy: Mapped[int] = mapped_column(Integer)  # 1-based, among the job's copies
    x_mm: Mapped[float] = mapped_column(Float)
    y_mm: Mapped[float] = mapped_column(Float)
    rotation_deg: Mapped[float] = mapped_column(Float)
    sheet: Mapped[BatchSheet] = relationship(back_populates="placements")


BUILD_STATES = ("queued", "running", "done", "failed")
BUILD_KINDS = ("preview", "quote", "picture", "plates")


class Build(Base):
    """A preview, quote, catalog picture or customer's plates asked for by a page and built by a worker, never by a
    request thread: the request enqueues it (once per ``key``) and answers "preparing"; the worker records the
    outcome here (a quote's measured parts in ``result``, a failure's ``reason``) and how long it took.

    ``key`` is a hash of what is built (template, version, canonical parameters, export settings and,
    for a quote, the material and the machine fleet), so equal requests share one build.
    """

    __tablename__ = "builds"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
        CheckConstraint("kind IN ('preview', 'quote', 'picture', 'plates')", name="kind"),
        Index("ix_builds_kind_finished", "kind", "finished_at"),
    )

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)   # what the worker needs to build it
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid of the worker building it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class WorkerRow(Base):
    """A worker process and its heartbeat: written every ``WORKER_HEARTBEAT_SECONDS`` while it lives, with the
    task it is running. A heartbeat older than ``WORKER_STALE_SECONDS`` means the worker is hung (stopped,
    stuck) or dead: its task is given to another worker and staff see it."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16), default="worker")  # worker, reaper, dispatcher or batcher
    state: Mapped[str] = mapped_column(String(16), default="idle")   # idle, busy, stopped, lost
    task: Mapped[str | None] = mapped_column(String(64))             # the task's name (render_item, ...)
    task_args: Mapped[list[Any] | None] = mapped_column(JSON)
    task_id: Mapped[str | None] = mapped_column(String(64))
    task_priority: Mapped[int | None] = mapped_column(Integer)
    task_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    tasks_done: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)                   # what the reaper did about it
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SliceRecord(Base):
    """One part PrusaSlicer sliced for a quote: the printer, filament and profile (digest of the PrusaSlicer
    profile) it was sliced with, the part's features (``parametric.fdm.estimator.PartFeatures``) and the slicer's
    print time and filament for one copy. The shop's own history, which instant estimates are fitted to."""

    __tablename__ = "slice_records"
    __table_args__ = (
        UniqueConstraint("printer", "material", "profile", "part_key", name="uq_slice_records_part"),
        Index("ix_slice_records_group", "printer", "material", "profile", "template"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    template: Mapped[str] = mapped_column(String(64))  # the product the part belongs to
    printer: Mapped[str] = mapped_column(String(100))
    material: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(16))
    part_key: Mapped[str] = mapped_column(String(128))  # the sliced STL's SHA-256: one record per part
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    print_time_s: Mapped[float] = mapped_column(Float)
    filament_g: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SliceModelRow(Base):
    """The estimator fitted to one printer, filament and profile's slice records (refitted as each comes in), with
    each product's own scale on it, or why there is none yet (``reason``: too few slices)."""

    __tablename__ = "slice_models"

    printer: Mapped[str] = mapped_column(String(100), primary_key=True)
    material: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[str] = mapped_column(String(16), primary_key=True)
    model: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    slices: Mapped[int] = mapped_column(Integer, default=0)
    fitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
