"""Machines stored in the database: one row per printer or router, its record as the core's dict.

The core's :func:`parametric.machines.machine_from_dict` is the only validator: a record it
refuses comes back as its field errors (the API answers them as 422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from parametric import FieldError, ValidationError
from parametric.machines import Machine, machine_from_dict, machine_to_dict

from .db import Base, Database, utcnow


class MachineRow(Base):
    """A machine: ``name`` (unique), ``kind`` (printer or router) and the core's record of it."""

    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MachineExists(ValidationError):
    """A machine of that name is already stored."""


def parse(data: Any) -> Machine:
    """The machine a request body describes; raises :class:`ValidationError` with the core's field errors."""
    return machine_from_dict(data)


def public(machine: Machine) -> dict[str, Any]:
    """A machine as the API shows it: the record without the host's API key."""
    record = machine_to_dict(machine)
    if record.get("host"):
        record["host"] = {k: v for k, v in record["host"].items() if k != "api_key"}
    return record


def all_machines(database: Database) -> list[Machine]:
    with database.session() as session:
        rows = session.scalars(select(MachineRow).order_by(MachineRow.name)).all()
    return [machine_from_dict(row.record) for row in rows]


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
