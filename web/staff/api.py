"""Staff endpoints, ``/api/v1/staff``: every order (never its token, which only the customer has), its files,
the queue, retrying a failed item.

Each needs a staff account's HTTP basic credentials (``parametric users add NAME``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, request
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from parametric import FieldError

from ..api import describe_item, describe_order, send_archive, send_artifact
from ..errors import errors_response, json_errors
from ..inputs import whole_number
from ..models import ITEM_STATES, Order, OrderItem, utcnow
from ..orders.placing import load_order
from ..services import services
from .auth import staff_required

bp = Blueprint("staff", __name__, url_prefix="/api/v1/staff")
log = logging.getLogger(__name__)

MAX_PAGE = 200


def _whole_number(name: str, default: int, low: int, high: int, problems: list[FieldError]) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        problems.append(FieldError(name, f"a whole number from {low} to {high}"))
    return default if value is None else value


@bp.get("/orders")
@staff_required
def list_orders() -> Any:
    """Newest orders first; ``?state=`` keeps orders with an item in that state; ``?limit=&offset=`` page."""
    problems: list[FieldError] = []
    limit = _whole_number("limit", 50, 1, MAX_PAGE, problems)
    offset = _whole_number("offset", 0, 0, 10**9, problems)
    state = request.args.get("state")
    if state is not None and state not in ITEM_STATES:
        problems.append(FieldError("state", f"one of: {', '.join(ITEM_STATES)}"))
    if problems:
        return errors_response(problems)
    query = select(Order)
    if state is not None:
        query = query.where(Order.id.in_(select(OrderItem.order_id).where(OrderItem.state == state)))
    with services().database.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        orders = session.scalars(query.order_by(Order.created_at.desc(), Order.id).limit(limit).offset(offset)
                                 .options(selectinload(Order.items).selectinload(OrderItem.artifacts))).all()
    return {"orders": [describe_order(order, staff=True) for order in orders], "total": total,
            "limit": limit, "offset": offset}


@bp.get("/orders/<order_id>")
@staff_required
def show_order(order_id: str) -> Any:
    order = load_order(services().database, order_id)
    if order is None:
        return json_errors(404, "no order with this id")
    return describe_order(order, staff=True)


@bp.get("/orders/<order_id>/items/<int:position>/files/<path:filename>")
@staff_required
def download(order_id: str, position: int, filename: str) -> Any:
    """One generated file of any order, for staff (customers use the link with the order's token)."""
    order = load_order(services().database, order_id)
    if order is None:
        return json_errors(404, "no order with this id")
    return send_artifact(order, position, filename)


@bp.get("/orders/<order_id>/items/<int:position>/archive")
@staff_required
def download_archive(order_id: str, position: int) -> Any:
    """Every file of an item of any order in one zip, for staff."""
    order = load_order(services().database, order_id)
    if order is None:
        return json_errors(404, "no order with this id")
    return send_archive(order, position)


def retry(item_id: int) -> str:
    """Queue a failed item again with fresh attempts: ``"queued"``, ``"missing"`` or ``"not failed"``."""
    database = services().database
    with database.transaction() as session:
        result = session.execute(
            update(OrderItem).where(OrderItem.id == item_id, OrderItem.state == "failed")
            .values(state="queued", attempts=0, enqueued_at=None, heartbeat_at=utcnow(), finished_at=None)
            .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        with database.session() as session:
            return "missing" if session.get(OrderItem, item_id) is None else "not failed"
    services().generation.hand_over([item_id], services().queue.enqueue)
    return "queued"


@bp.post("/items/<int(max=2147483647):item_id>/retry")
@staff_required
def retry_item(item_id: int) -> Any:
    """Queue a failed item again with fresh attempts (e.g. after a template fix or a worker problem)."""
    outcome = retry(item_id)
    if outcome == "missing":
        return json_errors(404, "no item with this id")
    if outcome == "not failed":
        return json_errors(409, "only a failed item can be retried", "state")
    database = services().database
    with database.session() as session:
        item = session.get(OrderItem, item_id, options=[selectinload(OrderItem.artifacts),
                                                        selectinload(OrderItem.order)])
        assert item is not None
        return describe_item(item.order, item, staff=True)


def queue_report() -> dict[str, Any]:
    """The render queue for staff: items by state, tasks waiting by kind, builds in progress, every worker
    with its last heartbeat, and the items that are stuck (a lease run out, a worker that stopped answering,
    or waiting longer than ``WORKER_STALE_SECONDS`` x 10 without a worker)."""
    from datetime import timedelta

    from .. import builds, workers
    from ..tasks import PRIORITY

    config = services().config
    generation = services().generation
    database = services().database
    stale_s = float(config["WORKER_STALE_SECONDS"])
    now = utcnow()
    described = workers.describe(database, stale_s)
    gone = [w["name"] for w in described if w["state"] in ("stale", "lost")]
    with database.session() as session:
        counts = dict(session.execute(select(OrderItem.state, func.count()).group_by(OrderItem.state)).all())
        expired = session.scalar(select(func.count()).select_from(OrderItem).where(
            OrderItem.state == "rendering", OrderItem.lease_expires_at < now)) or 0
        suspects = session.scalars(select(OrderItem).where(
            (OrderItem.state == "rendering") | ((OrderItem.state == "queued")
                                                & (OrderItem.created_at < now - timedelta(seconds=10 * stale_s))))
            .order_by(OrderItem.id).limit(200)).all()
    stuck = []
    for item in suspects:
        owner = ":".join((item.lease_owner or "").split(":")[:2])
        why = None
        if item.state == "rendering" and item.lease_expires_at is not None and item.lease_expires_at < now:
            why = f"its lease ran out at {item.lease_expires_at:%H:%M:%S} UTC (worker {owner} stopped renewing it)"
        elif item.state == "rendering" and owner in gone:
            why = f"its worker {owner} stopped answering"
        elif item.state == "queued":
            why = f"waiting since {item.created_at:%Y-%m-%d %H:%M} UTC" + (f" ({item.reason})" if item.reason else "")
        if why:
            stuck.append({"id": item.id, "order_id": item.order_id, "state": item.state, "worker": owner or None,
                          "attempts": item.attempts, "why": why})
    queue = services().queue
    try:
        by_priority = queue.waiting()
        waiting = {kind: int(by_priority.get(level, 0)) for kind, level in PRIORITY.items()}
    except Exception:  # the queue's storage is away: say so rather than fail the page
        log.exception("could not read the queue")
        waiting = {}
    return {"states": {state: int(counts.get(state, 0)) for state in ITEM_STATES},
            "depth": int(counts.get("queued", 0)) + int(counts.get("rendering", 0)),
            "average_render_s": round(generation.average_render_seconds(), 3), "expired_leases": expired,
            "waiting": waiting, "builds": builds.waiting(database), "workers": described, "stuck": stuck,
            "worker_stale_s": stale_s}


@bp.get("/queue")
@staff_required
def queue() -> Any:
    """How many items are in each state, how long renders take, leases that have run out, the tasks waiting by
    kind, every worker with its last heartbeat, and stuck items."""
    return queue_report()
