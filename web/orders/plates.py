"""Print-ready plates for the customer's own printer: asked for by a request, sliced by a worker.

PrusaSlicer takes about a second a plate, so a request never slices: :func:`ask_plates` checks the printer (an
unknown one is the customer's to fix, answered at once and naming ``printer``) and the item's STLs against their
records, serves the plates if they were made, and otherwise asks for a ``plates`` build (``web.builds``) at the
``plates`` priority: the answer is :class:`~web.builds.Preparing` until a worker has made them
(:func:`make_plates`, the ``build_plates`` task). Parts that do not fit on the printer are a failed build
whose reason names ``printer``; a fault of ours (the slicer crashed, a full disk) is tried again by the worker
and says so (:attr:`Plates.fault`), never blamed on the customer. The API (JSON, 202 with ``Retry-After``) and
the shop's page for browsers (which refreshes itself, then delivers the file) both answer from :func:`ask_plates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parametric import FieldError, ValidationError
from parametric.errors import InfrastructureError

from ..builds import BuildFailed, Preparing, build_key, forget, request_build
from ..db import Database
from ..models import Order, OrderItem
from . import downloads
from .placing import load_order

NO_PLATES = "this order item has no printed parts ready to put on plates"
BUILD_KIND = "plates"
"""The kind plates are recorded under in the builds table (migration 0010)."""


@dataclass(frozen=True)
class Plates:
    """What a request for plates found: the file (``archive``), or that a worker is making it (``preparing``,
    with ``fault`` set while it is tried again after a fault of ours), or why it cannot be made (``problem``, the
    customer's: field ``printer``); ``printer`` is the printer's name for the page, ``None`` when the item has no
    printed parts (all else ``None`` too, unless ``problem`` says the printer is not one we offer)."""

    printer: str | None = None
    archive: downloads.Archive | None = None
    preparing: Preparing | None = None
    problem: FieldError | None = None

    @property
    def fault(self) -> str | None:
        return self.preparing.fault if self.preparing is not None else None


def plates_key(order: Order, item: OrderItem, plan: downloads.PlatesPlan) -> str:
    """The build key: the order item and everything its plates are made from (printer, quantity, files)."""
    return build_key("plates", order.id, item.position, plan.key)


def ask_plates(services: Any, order: Order, item: OrderItem | None, printer_id: str, client: str | None,
               again: bool = True) -> Plates:
    """The plates of ``item`` for ``printer_id`` if they are made, else a worker asked to make them (never here);
    a printer we do not offer is a :attr:`Plates.problem` naming ``printer`` and those we do.

    Raises ``InfrastructureError`` when an STL no longer matches its record, ``OSError`` for a disk fault (both
    answered 503 by the app's handlers) and ``web.limits.RateLimited`` when the client asked for too many new
    builds."""
    output = services.config["OUTPUT_FOLDER"]
    try:
        plan = downloads.plan_home_plates(output, order, item, printer_id) if item is not None else None
    except ValidationError as error:
        return Plates(problem=error.errors[0])
    if item is None or plan is None:
        return Plates()
    made = downloads.built_home_plates(plan)
    if made is not None:
        return Plates(plan.home.name, archive=made)
    key = plates_key(order, item, plan)

    def enqueue(level: int) -> None:  # only for a build not asked for yet: the files it is made from are checked
        try:
            downloads.check_plate_sources(output, plan)
        except downloads.CorruptFile as error:  # the order's own copy changed on disk: ours to mend, not queued
            raise InfrastructureError("corrupt_file", str(error)) from error
        services.queue.build_plates(key, priority=level)

    try:
        outcome = request_build(services.database, services.config, services.build_limit, BUILD_KIND, key,
                                {"order": order.id, "position": item.position, "printer": plan.home.id}, client,
                                enqueue, "plates")
    except BuildFailed as error:
        return Plates(plan.home.name, problem=FieldError("printer", error.reason.removeprefix("printer: ")))
    if isinstance(outcome, Preparing):
        return Plates(plan.home.name, preparing=outcome)
    made = downloads.built_home_plates(plan)
    if made is None and again:  # made, then removed from the item's folder: make them again
        forget(services.database, key)
        return ask_plates(services, order, item, printer_id, client, again=False)
    if made is None:
        retry_after = max(1, int(services.config["BUILD_POLL_SECONDS"]))
        return Plates(plan.home.name, preparing=Preparing(key, "queued", retry_after))
    return Plates(plan.home.name, archive=made)


def make_plates(request: dict[str, Any], database: Database, output_folder: str | Path) -> dict[str, Any]:
    """On a worker: slice the plates the build ``request`` asks for (``order``, ``position``, ``printer``) into the
    item's folder. Parts that do not fit are a ``ValidationError`` (the build fails with its reason); a slicer
    crash or a changed file is a fault of ours, which the worker tries again."""
    order = load_order(database, str(request["order"]))
    item = next((i for i in order.items if i.position == int(request["position"]) and i.state == "ready"),
                None) if order is not None else None
    made = downloads.build_home_plates(output_folder, order, item, str(request["printer"])) \
        if order is not None and item is not None else None
    if made is None:
        raise ValidationError([FieldError("printer", NO_PLATES)])
    return {"name": made.name, "bytes": made.size, "etag": made.etag}

