"""The staff dashboard, ``/staff``: orders with filters and search, item details, retry and cancel.

Staff log in with the accounts of the users table (``parametric users add NAME``); the
login is kept in the signed session cookie with the account's session version, checked
against the table on every request, so removing an account or logging out ends its
sessions (a cookie copied before the logout opens nothing). Wrong passwords lock the
login out for a while (``web.staff.auth.log_in``). Every form carries a CSRF token
(``web.pages``). Items are described by the API's own :func:`web.api.describe_order`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

import parametric

from .. import limits
from ..api import describe_order, send_archive, send_artifact
from ..db import Database
from ..inputs import whole_number
from ..models import ITEM_STATES, Order, OrderItem, utcnow
from ..orders.placing import load_order, order_status
from ..services import services
from ..shop.forms import parameter_rows
from .api import retry
from .auth import end_sessions, log_in, session_version

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__, url_prefix="/staff")

PAGE_SIZE = 50
CANCELLED = "cancelled by the shop"
ORDER_ID = re.compile(r"^[0-9a-f]{1,32}$")


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a visitor without a staff session to the login page (and back here afterwards)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        name = session.get("staff_user")
        if name is not None and session_version(services().database, name) != session.get("staff_session"):
            name = None  # the account is gone, or this session ended at a logout (a cookie copied before it)
            session.clear()
        if name is None:
            return redirect(url_for("dashboard.login", next=request.full_path if request.method == "GET" else None))
        g.staff_user = name
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path only (never another site)."""
    if target and target.startswith("/staff") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.orders")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    name = ""
    status, headers = 200, {}
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        database = services().database
        attempt = log_in(database, services().config, name, request.form.get("password", ""),
                         limits.client_address(), "form")
        if attempt.ok:
            session.clear()  # a fresh session: nothing from before the login survives it
            session["staff_user"] = name
            session["staff_session"] = session_version(database, name)
            return redirect(_safe_next(request.form.get("next")), code=303)
        if attempt.retry_after is not None:
            error = (f"Too many wrong passwords from here or for this account: logging in is locked for "
                     f"{limits.in_words(attempt.retry_after)}. Please wait and try again.")
            status, headers = 429, {"Retry-After": limits.retry_after(attempt.retry_after)}
        else:
            error, status = "Unknown user name or wrong password.", 401
    return render_template("staff/login.html", error=error, name=name, next=request.values.get("next", "")), \
        status, headers


@bp.post("/logout")
def logout() -> Any:
    """End this staff member's sessions everywhere: a copy of the cookie no longer opens the dashboard."""
    name = session.get("staff_user")
    if name is not None and session_version(services().database, name) == session.get("staff_session"):
        end_sessions(services().database, name)
        log.info("staff %s logged out", name)
    session.clear()
    return redirect(url_for("dashboard.login"), code=303)


# -- orders -------------------------------------------------------------------------------------


def _date(raw: str | None, problems: list[str], label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{label}: a date like 2025-01-31")
        return None


@bp.get("/")
@login_required
def orders() -> Any:
    """Newest orders first, filtered by item state, template and date, searched by customer or order id."""
    args = request.args
    problems: list[str] = []
    state = args.get("state") or None
    template = args.get("template") or None
    query_text = (args.get("q") or "").strip()
    since = _date(args.get("from"), problems, "From")
    until = _date(args.get("to"), problems, "To")
    offset = whole_number(args.get("offset") or "0")
    if offset is None or offset > 10**9:
        problems.append("Offset: a whole number from 0 to 1000000000")
        offset = 0
    if state is not None and state not in ITEM_STATES:
        problems.append(f"State: one of {', '.join(ITEM_STATES)}")
        state = None
    query = select(Order)
    if state is not None:
        query = query.where(Order.id.in_(select(OrderItem.order_id).where(OrderItem.state == state)))
    if template is not None:
        query = query.where(Order.id.in_(select(OrderItem.order_id).where(OrderItem.template == template)))
    if since is not None:
        query = query.where(Order.created_at >= datetime.combine(since, datetime.min.time()))
    if until is not None:
        query = query.where(Order.created_at < datetime.combine(until + timedelta(days=1), datetime.min.time()))
    if query_text:
        matches = [Order.customer_name.icontains(query_text, autoescape=True),
                   Order.customer_email.icontains(query_text, autoescape=True)]
        if ORDER_ID.match(query_text.lower()):
            matches.append(Order.id.startswith(query_text.lower(), autoescape=True))
        query = query.where(or_(*matches))
    database = services().database
    with database.session() as db:
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        found = db.scalars(query.order_by(Order.created_at.desc(), Order.id).limit(PAGE_SIZE).offset(offset)
                           .options(selectinload(Order.items))).all()
        counts = dict(db.execute(select(OrderItem.state, func.count()).group_by(OrderItem.state)).all())
    rows = [{"order": order, "status": order_status([item.state for item in order.items])} for order in found]
    filters = {"state": state or "", "template": template or "", "q": query_text, "from": args.get("from", ""),
               "to": args.get("to", "")}
    return render_template("staff/orders.html", rows=rows, total=total, offset=offset, page_size=PAGE_SIZE,
                           filters=filters, problems=problems, states=ITEM_STATES, counts=counts,
                           templates=[t.id for t in parametric.templates()])


def _manifest(item: OrderItem) -> dict[str, Any] | None:
    """The item's manifest (checks, sizes, mass) as written beside its files, if it has one."""
    artifact = next((a for a in item.artifacts if a.format == "manifest"), None)
    if artifact is None:
        return None
    root = Path(services().config["OUTPUT_FOLDER"]).resolve()
    path = (root / artifact.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except ValueError:
        return None


def _load(order_id: str) -> Order:
    order = load_order(services().database, order_id)
    if order is None:
        abort(404, description="There is no order with this id.")
    return order


@bp.get("/orders/<order_id>")
@login_required
def order(order_id: str) -> Any:
    found = _load(order_id)
    described = describe_order(found, staff=True)
    manifests = {item.position: _manifest(item) for item in found.items}
    items = [{**item, "rows": parameter_rows(item["template"], item["params"]),
              "manifest_data": manifests.get(item["position"]),
              "cancelled": item["state"] == "failed" and (item.get("last_error") or "").startswith(CANCELLED)}
             for item in described["items"]]
    return render_template("staff/order.html", order=described, items=items)


@bp.get("/orders/<order_id>/items/<int:position>/files/<path:filename>")
@login_required
def download(order_id: str, position: int, filename: str) -> Any:
    """One generated file of the order, for staff logged in to the dashboard."""
    response = send_artifact(_load(order_id), position, filename)
    if response.status_code == 404:
        abort(404, description="There is no such file for this order item.")
    return response


@bp.get("/orders/<order_id>/items/<int:position>/archive")
@login_required
def download_archive(order_id: str, position: int) -> Any:
    """Every file of an order item in one zip, for staff logged in to the dashboard."""
    response = send_archive(_load(order_id), position)
    if response.status_code == 404:
        abort(404, description="This order item has no files to download yet.")
    return response


# -- actions -----------------------------------------------------------------------------------------


def cancel(database: Database, item_ids: list[int]) -> list[int]:
    """Stop items that are queued or rendering; returns the ids stopped.

    A stopped item is ``failed`` with the reason "cancelled by the shop", so it is never claimed
    again; a worker rendering it loses its lease, and its result is not recorded (a worker only
    records an item that is still queued or rendering). Retrying it queues it again.
    """
    stopped = []
    now = utcnow()
    for item_id in item_ids:
        with database.transaction() as db:
            result = db.execute(
                update(OrderItem).where(OrderItem.id == item_id, OrderItem.state.in_(("queued", "rendering")))
                .values(state="failed", reason=f"{CANCELLED} on {now:%Y-%m-%d %H:%M} UTC", finished_at=now,
                        lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            stopped.append(item_id)
    return stopped


def _item_order(item_id: int) -> str:
    if not 0 < item_id < 2**63:  # no such row, and SQLite cannot even compare it
        abort(404, description="There is no item with this id.")
    with services().database.session() as db:
        order_id = db.scalar(select(OrderItem.order_id).where(OrderItem.id == item_id))
    if order_id is None:
        abort(404, description="There is no item with this id.")
    return order_id


@bp.post("/items/<int:item_id>/retry")
@login_required
def retry_item(item_id: int) -> Any:
    order_id = _item_order(item_id)
    outcome = retry(item_id)
    if outcome == "queued":
        log.info("staff %s retried item %s", g.staff_user, item_id)
        flash(f"Item {item_id} is queued again.", "success")
    else:
        flash(f"Item {item_id} was not retried: only a failed item can be retried.", "error")
    return redirect(url_for("dashboard.order", order_id=order_id), code=303)


@bp.post("/items/<int:item_id>/cancel")
@login_required
def cancel_item(item_id: int) -> Any:
    order_id = _item_order(item_id)
    if cancel(services().database, [item_id]):
        log.info("staff %s cancelled item %s", g.staff_user, item_id)
        flash(f"Item {item_id} is cancelled.", "success")
    else:
        flash(f"Item {item_id} was not cancelled: only a queued or rendering item can be.", "error")
    return redirect(url_for("dashboard.order", order_id=order_id), code=303)


@bp.post("/orders/<order_id>/cancel")
@login_required
def cancel_order(order_id: str) -> Any:
    found = _load(order_id)
    stopped = cancel(services().database, [item.id for item in found.items])
    log.info("staff %s cancelled order %s (items %s)", g.staff_user, order_id, stopped)
    if stopped:
        flash(f"Cancelled {len(stopped)} item(s); files already made are kept.", "success")
    else:
        flash("Nothing to cancel: no item of this order is queued or rendering.", "error")
    return redirect(url_for("dashboard.order", order_id=order_id), code=303)


# -- the render queue and its workers ----------------------------------------------------------------


@bp.get("/queue")
@login_required
def queue_page() -> Any:
    """Workers with their last heartbeat, what they hold, stuck items and the tasks waiting (refreshes itself)."""
    from .api import queue_report

    return render_template("staff/queue.html", report=queue_report())
