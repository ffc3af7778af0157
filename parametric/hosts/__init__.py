"""Machine hosts: one small connector class per protocol behind one interface (:mod:`.base`).

Connectors are found through the ``parametric.hosts`` entry point group, each registered under its
protocol name, so a shop adds one from its own package::

    [project.entry-points."parametric.hosts"]
    moonraker = "shop_hosts.moonraker:MoonrakerConnector"

The built-in ones are registered the same way in this project's ``pyproject.toml``: a print
host's REST API for printers, and the hot folder (:mod:`.hot_folder`) for routers. A machine
record names its host's protocol and the settings that connector declares; :func:`connector_for`
gives the connector that drives a machine. Importing this package loads no connector module.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from .base import (
    CAPABILITY_TEXT,
    JOB_TAG,
    STATES,
    Capability,
    ConnectionField,
    Connector,
    FileRecords,
    HostError,
    HostJob,
    HostRefused,
    HostUnreachable,
    MemoryRecords,
    PrinterBusy,
    PrinterStatus,
    Records,
    Upload,
    Withdrawal,
    default_records_path,
)

log = logging.getLogger(__name__)

ENTRY_POINTS = "parametric.hosts"

__all__ = [
    "CAPABILITY_TEXT", "ENTRY_POINTS", "JOB_TAG", "STATES", "Capability", "ConnectionField", "Connector",
    "FileRecords", "HostError", "HostJob", "HostRefused", "HostUnreachable", "MemoryRecords", "PrinterBusy",
    "PrinterStatus", "Records", "Upload", "Withdrawal", "connector_class", "connector_for", "connectors",
    "default_records_path", "implied_protocol", "protocols",
]


@cache
def _loaded() -> tuple[dict[str, type[Connector]], dict[str, str]]:
    """(connector class per protocol, why each entry point that failed could not be used)."""
    from importlib.metadata import entry_points

    found: dict[str, type[Connector]] = {}
    broken: dict[str, str] = {}
    for entry_point in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: (e.name, e.value)):
        try:
            loaded = entry_point.load()
        except Exception as error:  # a shop's broken package must not hide the other connectors
            log.warning("the host connector %s (%s) cannot be loaded: %s", entry_point.name, entry_point.value, error)
            broken[entry_point.name] = f"{entry_point.value} cannot be loaded: {error}"
            continue
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            broken[entry_point.name] = f"{entry_point.value} is not a Connector class"
        elif getattr(loaded, "protocol", None) != entry_point.name:
            broken[entry_point.name] = (f"{entry_point.value} declares the protocol "
                                        f"{getattr(loaded, 'protocol', None)!r}, not {entry_point.name!r}")
        elif entry_point.name in found and found[entry_point.name] is not loaded:
            broken[entry_point.name] = f"registered twice ({entry_point.value} and another)"
        else:
            found[entry_point.name] = loaded
    return found, broken


def connectors(machine_kind: str | None = None) -> dict[str, type[Connector]]:
    """The installed connector classes by protocol (those driving ``machine_kind`` when given), sorted by name."""
    found, _ = _loaded()
    return {protocol: cls for protocol, cls in sorted(found.items())
            if machine_kind is None or machine_kind in cls.machine_kinds}


def protocols(machine_kind: str | None = None) -> tuple[str, ...]:
    """The protocols a host of ``machine_kind`` may name."""
    return tuple(connectors(machine_kind))


def implied_protocol(machine_kind: str) -> str | None:
    """The protocol a stored host of ``machine_kind`` without one means, if a connector declares it."""
    return next((p for p, cls in connectors(machine_kind).items() if cls.implied), None)


def connector_class(protocol: str, machine_kind: str | None = None) -> type[Connector]:
    """The connector class of ``protocol``; HostRefused naming the installed ones when there is none."""
    found, broken = _loaded()
    cls = found.get(protocol)
    if cls is not None and (machine_kind is None or machine_kind in cls.machine_kinds):
        return cls
    known = ", ".join(protocols(machine_kind)) or "none"
    if protocol in broken:
        reason = f"the connector for {protocol!r} is installed but unusable ({broken[protocol]})"
    elif cls is not None:
        reason = f"{cls.label} does not drive a {machine_kind}"
    else:
        reason = f"no connector for {protocol!r} is installed"
    raise HostRefused(protocol, f"{reason}; installed: {known}")


def connector_for(machine: Any, *, timeout_s: float = 10.0, records: Records | None = None) -> Connector:
    """The connector that drives ``machine`` (a :class:`~parametric.machines.Printer` or
    :class:`~parametric.machines.Router`), with ``records`` for what its host cannot remember."""
    connection = machine.connection()
    if connection is None:
        what = "print host" if machine.kind == "printer" else "hot folder or other host"
        raise HostRefused(machine.name, f"this {machine.kind} has no {what} to send jobs to; its files are "
                                        "downloaded by staff")
    cls = connector_class(connection.protocol, machine.kind)
    return cls(connection.settings, machine.name, timeout_s=timeout_s, records=records)
