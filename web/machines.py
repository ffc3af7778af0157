"""Machines stored in the database: one row per printer or router, its record as the core's dict.

The core's :func:`parametric.machines.machine_from_dict` is the only validator: a record it
refuses comes back as its field errors (the API answers them as 422).

:class:`DatabaseStore` gives the core's CLI (``parametric machines``, ``slice``, ``cam``,
``jobsheet``, ``send``) the same table: :func:`open_store` is registered in the
``parametric.machine_stores`` entry point group, so the core finds it without importing us.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from parametric import FieldError, ValidationError
from parametric.machines import (
    STORE_CHOICES,
    Machine,
    machine_from_dict,
    machine_to_dict,
    name_taken,
    no_such_machine,
)

from .db import Database
from .models import MachineRow


class MachineExists(ValidationError):
    """A machine of that name is already stored."""


def parse(data: Any) -> Machine:
    """The machine a request body describes; raises :class:`ValidationError` with the core's field errors."""
    return machine_from_dict(data)


def all_machines(database: Database) -> list[Machine]:
    with database.session() as session:
        rows = session.scalars(select(MachineRow).order_by(MachineRow.name)).all()
    return [machine_from_dict(row.record) for row in rows]


def fleet(database: Database) -> tuple[list[Machine], str]:
    """The shop's machines and a fingerprint of them: quotes and from-prices are kept per fleet."""
    import hashlib
    import json

    machines = all_machines(database)
    records = json.dumps([machine_to_dict(m) for m in machines], sort_keys=True, default=str)
    return machines, hashlib.sha256(records.encode()).hexdigest()[:16]


def stocked(database: Database) -> dict[str, list[float]] | None:
    """The sheet thicknesses the shop's routers stock, by material (``None`` without a router): the only ones
    an order's sheet thickness may be (:meth:`parametric.registry.Template.stock_problems`)."""
    from parametric.routing import stocked_thicknesses

    return stocked_thicknesses(all_machines(database))


def get(database: Database, name: str) -> Machine | None:
    with database.session() as session:
        row = session.scalar(select(MachineRow).where(MachineRow.name == name))
    return None if row is None else machine_from_dict(row.record)


def add(database: Database, machine: Machine, *, replace: bool = False) -> None:
    """Store ``machine``; raises :class:`MachineExists` when the name is taken (unless ``replace``)."""
    record = machine_to_dict(machine)
    try:
        with database.transaction() as session:
            row = session.scalar(select(MachineRow).where(MachineRow.name == machine.name))
            if row is not None and not replace:
                raise MachineExists([FieldError("name", f"there is already a machine named {machine.name!r}")])
            if row is None:
                session.add(MachineRow(name=machine.name, kind=machine.kind, record=record))
            else:
                row.kind, row.record = machine.kind, record
    except IntegrityError:
        raise MachineExists([FieldError("name", f"there is already a machine named {machine.name!r}")]) from None


def remove(database: Database, name: str) -> bool:
    """Delete the machine called ``name``; ``False`` when there is none."""
    with database.transaction() as session:
        row = session.scalar(select(MachineRow).where(MachineRow.name == name))
        if row is None:
            return False
        session.delete(row)
    return True


# -- the CLI's store ------------------------------------------------------------------------------


class DatabaseStore:
    """The machines table behind the core's store interface (:class:`parametric.machines.Store`)."""

    def __init__(self, database: Database):
        self.database = database
        self.location = safe_url(database.url)

    def all(self) -> list[Machine]:
        return all_machines(self.database)

    def get(self, name: str) -> Machine:
        """The machine called ``name``, or a validation error naming the stored ones."""
        machine = get(self.database, name)
        if machine is None:
            raise no_such_machine(name, [m.name for m in self.all()])
        return machine

    def add(self, machine: Machine, *, replace: bool = False) -> None:
        try:
            add(self.database, machine, replace=replace)
        except MachineExists:
            raise name_taken(machine.name) from None

    def remove(self, name: str) -> None:
        if not remove(self.database, name):
            raise no_such_machine(name, [m.name for m in self.all()])


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: hide whatever might hold a secret
        scheme, separator, _ = url.partition("://")
        if separator:
            return f"{scheme}://..."
        return "(a value with an @, not shown)" if "@" in url else repr(url)


DATABASE_CHOICES = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE"


def open_store(location: str | None = None) -> DatabaseStore:
    """The machines in the database at ``location`` (a SQLAlchemy URL), or, for ``None``, the web app's own
    database (``DATABASE_URL``, else SQLite in the instance folder: what ``parametric serve`` uses).

    The schema is brought up to date first, as ``serve`` does (a no-op costing a few milliseconds once it is).
    A URL that cannot be opened is a :class:`ValidationError` on the field ``store`` (``DATABASE_URL`` when
    it came from the configuration).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .config import load_config

    url = location or load_config()["DATABASE_URL"]
    field, allowed = ("store", STORE_CHOICES) if location else ("DATABASE_URL", DATABASE_CHOICES)
    try:
        parsed = make_url(url)
    except SQLAlchemyError:
        problem = FieldError(field, f"{safe_url(url)} is not a database URL; allowed: {allowed}")
        raise ValidationError([problem]) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValidationError([FieldError(field, f"{backend} databases are not supported; allowed: {allowed}")])
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValidationError([FieldError(field, f"{safe_url(url)} is an in-memory database, which keeps nothing; "
                                                 "allowed: a SQLite file, sqlite:///PATH")])
    database = Database(url)
    try:
        database.upgrade()
    except (SQLAlchemyError, ImportError, OSError) as error:
        database.dispose()
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ValidationError([FieldError(field, f"cannot open the database {safe_url(url)}: {reason}")]) from None
    return DatabaseStore(database)
