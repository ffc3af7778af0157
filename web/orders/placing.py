"""Orders: reading an order request (every problem at once), creating it once per idempotency key.

An ``Idempotency-Key`` belongs to the client that first sent it (its address, ``web.limits``) for
``IDEMPOTENCY_HOURS``: a retry from that client returns the first order with its token, the same key
from another client is refused (409) and learns nothing of the order; after the hours the key is
forgotten. Replays are not counted against the client's orders per hour.

An order line is validated by its template's own parameter model; the stored parameters are
the canonical ones (mm, degrees) with the template version they were made with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

import parametric
from parametric import FieldError, Template, ValidationError
from parametric.units import LENGTH_UNITS, written_in_imperial

from ..db import Database
from ..models import IdempotencyKey, Order, OrderItem, utcnow
from . import tokens

ITEM_FIELDS = ("template", "preset", "params", "quantity", "material", "units")
ORDER_FIELDS = ("customer", "items", "units")
CUSTOMER_FIELDS = ("name", "email")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
NAME_MAX, EMAIL_MAX, KEY_MAX = 200, 254, 255


@dataclass(frozen=True)
class ItemRequest:
    """One validated order line (or quote request)."""

    template: Template
    params: dict[str, Any]  # canonical: mm and degrees
    quantity: int
    material: str


@dataclass(frozen=True)
class OrderRequest:
    customer_name: str
    customer_email: str
    items: list[ItemRequest]
    units: str = "mm"
    """The unit system the customer reads lengths in (mm, cm, in or ft); the parameters stay in mm."""


@dataclass(frozen=True)
class Placed:
    """The order a request placed or replayed: its id, its token (``None`` when a replay cannot give it back)
    and whether this request created it."""

    order_id: str
    token: str | None
    created: bool


@dataclass(frozen=True)
class Client:
    """Who places an order, for its idempotency key and the orders-per-client limit: the client's address
    (``web.limits.client_address``), and the app's secret key that seals the token for replays."""

    address: str
    secret: bytes
    expiry_hours: float = 24.0


class IdempotencyConflict(Exception):
    """The idempotency key was already used with a different request body."""


class IdempotencyForeign(Exception):
    """The idempotency key was already used by another client: its order is not this client's to see."""


class TooManyOrders(Exception):
    """The client placed as many orders as it may for now; ``retry_after`` seconds until it may place another."""

    def __init__(self, retry_after: float):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _unknown(value: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> list[FieldError]:
    return [FieldError(f"{prefix}{key}", f"unknown field; allowed: {', '.join(allowed)}")
            for key in value if key not in allowed]


def _params_errors(error: ValidationError, dot: str) -> list[FieldError]:
    """The template's errors under ``<dot>params`` (``<dot>preset`` for a preset); ``dot``: ``""``, ``items[0].``."""
    problems = []
    for problem in error.errors:
        if problem.field == "preset":
            problems.append(FieldError(f"{dot}preset", problem.message))
        elif problem.field in ("", "params"):
            problems.append(FieldError(f"{dot}params", problem.message))
        else:
            problems.extend(ValidationError([problem]).prefixed(f"{dot}params").errors)
    return problems


def parse_units(raw: Any, field: str) -> tuple[str, list[FieldError]]:
    """The unit system a request asks lengths to be written in (default mm), or why it cannot be used."""
    if raw is None:
        return "mm", []
    if raw not in LENGTH_UNITS:
        allowed = ", ".join(f"{key} ({name})" for key, name in LENGTH_UNITS.items())
        return "mm", [FieldError(field, f"“{raw}” is not a unit system we write lengths in; allowed: {allowed}")]
    return str(raw), []


def parse_item(raw: Any, prefix: str, max_quantity: int, units: str = "mm",
               stocked: Mapping[str, Sequence[float]] | None = None) -> tuple[ItemRequest | None, list[FieldError]]:
    """An order line from JSON; field names in the errors start with ``prefix`` (e.g. ``items[0]``); lengths in
    its messages are written in ``units`` (or the line's own ``units`` field, as a quote request gives it).
    ``stocked``: the sheet thicknesses the shop's routers stock by material (``web.machines.stocked``), which
    a sheet thickness must be one of; ``None`` when the shop has no router."""
    if not isinstance(raw, dict):
        return None, [FieldError(prefix, "must be an object with template, params, quantity and "
                                 "material")]
    dot = f"{prefix}." if prefix else ""
    problems = _unknown(raw, ITEM_FIELDS, dot)
    if "units" in raw:
        units, unit_problems = parse_units(raw["units"], f"{dot}units")
        problems.extend(unit_problems)
    template = None
    template_id = raw.get("template")
    if template_id is None:
        problems.append(FieldError(f"{dot}template", "required: the id of a template (GET /api/v1/templates)"))
    elif not isinstance(template_id, str):
        problems.append(FieldError(f"{dot}template", "must be a template id (a string)"))
    else:
        try:
            template = parametric.get_template(template_id)
        except ValidationError as error:
            problems.extend(FieldError(f"{dot}template", e.message) for e in error.errors)

    quantity = raw.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        problems.append(FieldError(f"{dot}quantity", f"must be a whole number from 1 to {max_quantity}"))
    elif not 1 <= quantity <= max_quantity:
        problems.append(FieldError(f"{dot}quantity", f"{quantity} is out of range; allowed: 1 to {max_quantity}"))

    params = raw.get("params", {})
    preset = raw.get("preset")
    canonical = None
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append(FieldError(f"{dot}params", "must be an object of parameter name: value pairs"))
    if preset is not None and not isinstance(preset, str):
        problems.append(FieldError(f"{dot}preset", "must be a preset name (a string)"))
        preset = None
    if template is not None and isinstance(params, dict):
        if preset is not None and preset not in template.presets:
            problems.append(FieldError(f"{dot}preset", f"unknown preset {preset!r}; allowed: "
                                       + ", ".join(template.presets)))
            preset = None
        try:
            canonical = template.resolve(params, preset, units).canonical()
        except ValidationError as error:
            problems.extend(_params_errors(error, dot))

    material = raw.get("material")  # after the preset: a preset may name its material
    if material is not None and not isinstance(material, str):
        problems.append(FieldError(f"{dot}material", "must be a material id (a string)"))
        material = None
    elif template is not None:
        try:
            material = template.check_material(material, preset)
        except ValidationError as error:
            problems.extend(FieldError(f"{dot}material", e.message) for e in error.errors)
    if template is not None and canonical is not None and isinstance(material, str) and not problems:
        problems.extend(ValidationError(template.stock_problems(canonical, material, stocked, units))
                        .prefixed(f"{dot}params").errors)
    if problems or template is None or canonical is None or not isinstance(material, str):
        return None, problems
    return ItemRequest(template, canonical, quantity, material), []


def snap_item(item: ItemRequest, prefix: str = "", exact: frozenset[str] | set[str] = frozenset()
              ) -> tuple[ItemRequest | None, dict[str, dict[str, Any]], list[FieldError]]:
    """``item`` with its numbers on their fields' steps (the core's :func:`parametric.schema.snap_to_steps`),
    validated again; which fields moved (``{"width": {"given": 531.25, "used": 530}}``), and the problems
    when the snapped values break one of the template's rules. Previews, quotes and API orders use it before
    the cache key is made, so off-step decimals share one build. Fields in ``exact`` keep their values."""
    from parametric.schema import snap_to_steps

    snapped = snap_to_steps(item.template.Params, item.params)
    snapped.update({name: item.params[name] for name in exact if name in item.params})
    moved = {name: {"given": item.params[name], "used": value} for name, value in snapped.items()
             if value != item.params.get(name)}
    if not moved:
        return item, {}, []
    try:
        canonical = item.template.resolve(snapped).canonical()
    except ValidationError as error:
        dot = f"{prefix}." if prefix else ""
        return None, moved, _params_errors(error, dot)
    # What the model works out again is not moved (a foot length from its shoe size stays the size table's), so
    # the configurator never writes it into a box the customer left empty.
    moved = {name: {"given": item.params[name], "used": canonical[name]} for name in moved
             if canonical.get(name) != item.params.get(name)}
    return ItemRequest(item.template, canonical, item.quantity, item.material), moved, []


def imperial_fields(raw: Any) -> frozenset[str]:
    """The parameters of a JSON order line (``{"params": {...}}``) written in inches or feet: kept exact, not
    snapped to a millimetre step (``parametric.units.written_in_imperial``)."""
    params = raw.get("params") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        return frozenset()
    return frozenset(name for name, value in params.items() if written_in_imperial(value))


IMPERIAL_LINE_UNITS = ("in", "ft")
"""The unit systems (``parametric.units.LENGTH_UNITS``) whose lines are kept off the millimetre steps."""


def snap_line(item: ItemRequest, raw: Any, prefix: str = "") -> tuple[ItemRequest | None, dict[str, dict[str, Any]],
                                                                     list[FieldError]]:
    """A JSON line's item snapped to its fields' steps (:func:`snap_item`), the values it gave in inches or feet
    kept exact, as the configurator keeps a form filled in inches. A line written for a customer working in inches
    or feet (``"units": "in"``, as the configurator's live quote sends its preview's millimetres) is kept exact as
    a whole, as its form is: otherwise the live price would be of another shelf than the one ordered."""
    if isinstance(raw, dict) and raw.get("units") in IMPERIAL_LINE_UNITS:
        return item, {}, []
    return snap_item(item, prefix, imperial_fields(raw))


def snap_order(request: OrderRequest, body: Any) -> tuple[OrderRequest, list[dict[str, dict[str, Any]]],
                                                        list[FieldError]]:
    """The order with every line snapped (:func:`snap_line`), what moved per line, and the problems when a snapped
    value breaks one of a template's rules (named ``items[N].params...``)."""
    raw_items = body.get("items") if isinstance(body, dict) else None
    raw_items = raw_items if isinstance(raw_items, list) else []
    items, moved, problems = [], [], []
    for index, item in enumerate(request.items):
        raw = raw_items[index] if index < len(raw_items) else None
        snapped, line_moved, line_problems = snap_line(item, raw, f"items[{index}]")
        problems.extend(line_problems)
        items.append(snapped or item)
        moved.append(line_moved)
    return OrderRequest(request.customer_name, request.customer_email, items, request.units), moved, problems


def parse_order(body: Any, max_items: int, max_quantity: int, max_units: int | None = None,
                stocked: Mapping[str, Sequence[float]] | None = None) -> OrderRequest:
    """A validated order request, or a :class:`ValidationError` listing every problem."""
    if not isinstance(body, dict):
        raise ValidationError([FieldError("", "must be a JSON object with customer and items")])
    problems = _unknown(body, ORDER_FIELDS, "")
    shown_in, unit_problems = parse_units(body.get("units"), "units")  # the unit system lengths are written in
    problems.extend(unit_problems)
    customer = body.get("customer")
    name = email = ""
    if not isinstance(customer, dict):
        problems.append(FieldError("customer", "required: an object with name and email"))
    else:
        problems.extend(_unknown(customer, CUSTOMER_FIELDS, "customer."))
        name, email = customer.get("name"), customer.get("email")
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldError("customer.name", "required: the customer's name"))
        elif len(name.strip()) > NAME_MAX:
            problems.append(FieldError("customer.name", f"at most {NAME_MAX} characters"))
        if not isinstance(email, str) or not email.strip():
            problems.append(FieldError("customer.email", "required: an email address to tell the customer about "
                                                         "the order"))
        elif len(email.strip()) > EMAIL_MAX or not EMAIL.match(email.strip()):
            problems.append(FieldError("customer.email", "not an email address (like name@example.com)"))
    raw_items = body.get("items")
    items: list[ItemRequest] = []
    if not isinstance(raw_items, list) or not raw_items:
        problems.append(FieldError("items", "required: a list of at least one item"))
    elif len(raw_items) > max_items:
        problems.append(FieldError("items", f"{len(raw_items)} items; at most {max_items} per order"))
    else:
        for index, raw in enumerate(raw_items):
            item, item_problems = parse_item(raw, f"items[{index}]", max_quantity, shown_in, stocked)
            problems.extend(item_problems)
            if item is not None:
                items.append(item)
        units = sum(item.quantity for item in items)
        if max_units is not None and units > max_units:
            problems.append(FieldError("items", f"{units} pieces in all (the items' quantities added up); at most "
                                                f"{max_units} per order"))
    if problems:
        raise ValidationError(problems)
    return OrderRequest(name.strip(), email.strip(), items, shown_in)


def request_hash(body: Any) -> str:
    """A digest of a JSON body that ignores key order and whitespace."""
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def check_idempotency_key(key: str | None) -> list[FieldError]:
    if key is None:
        return []
    if not key.strip() or len(key) > KEY_MAX or not key.isprintable():
        return [FieldError("Idempotency-Key", f"a header of 1 to {KEY_MAX} printable characters, unique per order "
                                              "(e.g. a UUID)")]
    return []


def _replayed(database: Database, key: str, digest: str, client: Client) -> Placed | None:
    """The order an earlier request with ``key`` placed, or ``None`` (never used, or expired and forgotten now)."""
    with database.session() as session:
        existing = session.get(IdempotencyKey, key)
        if existing is None:
            return None
        if existing.created_at < utcnow() - timedelta(hours=client.expiry_hours):
            session.close()
            with database.transaction() as writing:
                writing.execute(delete(IdempotencyKey).where(IdempotencyKey.key == key,
                                                             IdempotencyKey.created_at == existing.created_at))
            return None
        if not hmac.compare_digest(existing.client.encode("utf-8", "replace"),
                                   client.address.encode("utf-8", "replace")):
            raise IdempotencyForeign(key)
        if existing.request_hash != digest:
            raise IdempotencyConflict(key)
        order = session.get(Order, existing.order_id)
        token = None
        if existing.sealed_token and order is not None:
            token = tokens.unseal(existing.sealed_token, client.secret, key, client.address, order.id,
                                  order.token_hash)
        return Placed(existing.order_id, token, False)


def place_order(database: Database, request: OrderRequest, cache_keys: list[str], key: str | None = None,
                digest: str | None = None, client: Client | None = None,
                admit: Callable[[], float | None] | None = None,
                quotes: list[dict[str, Any] | None] | None = None) -> Placed:
    """Create the order (once per idempotency key and client); a replay by the same client within the key's
    lifetime returns the first order (with its token), one by another client raises :class:`IdempotencyForeign`.
    ``admit``, called only before a new order is made, returns the seconds to wait when the client may not
    place one now (:class:`TooManyOrders`).

    ``quotes``: the quote each item was ordered at (its price and per-part machine times), kept with it so that
    the confirmation and the tracking page show the figures the customer saw at checkout.

    Two requests with one key racing in two processes: the key's primary key lets one
    transaction commit; the other fails on it, rolls back, and returns the winner's order.
    """
    client = client or Client("", b"")
    if key is not None:
        existing = _replayed(database, key, digest or "", client)
        if existing is not None:
            return existing
    if admit is not None:
        wait = admit()
        if wait is not None:
            raise TooManyOrders(wait)
    order_id = uuid.uuid4().hex
    token = tokens.new_token()
    try:
        with database.transaction() as session:
            order = Order(id=order_id, token_hash=tokens.token_hash(token), customer_name=request.customer_name,
                          customer_email=request.customer_email, units=request.units)
            order.items = [OrderItem(position=index + 1, template=item.template.id,
                                     template_version=item.template.version, params=item.params,
                                     quantity=item.quantity, material=item.material, cache_key=cache_key,
                                     state="queued", attempts=0, quote=quoted)
                           for index, (item, cache_key, quoted) in enumerate(zip(
                               request.items, cache_keys, quotes or [None] * len(request.items), strict=True))]
            session.add(order)
            if key is not None:
                session.flush()  # the order row first: the key refers to it
                session.add(IdempotencyKey(key=key, client=client.address, request_hash=digest, order_id=order_id,
                                           sealed_token=tokens.seal(token, client.secret, key, client.address,
                                                                    order_id)))
    except IntegrityError:
        if key is None:
            raise
        existing = _replayed(database, key, digest or "", client)
        if existing is None:
            raise
        return existing
    return Placed(order_id, token, True)


def load_order(database: Database, order_id: str) -> Order | None:
    """The order with its items and their files loaded (to be described or downloaded from), or ``None``."""
    with database.session() as session:
        return session.scalar(select(Order).where(Order.id == order_id)
                              .options(selectinload(Order.items).selectinload(OrderItem.artifacts)))


def item_ids(database: Database, order_id: str) -> list[int]:
    with database.session() as session:
        return list(session.scalars(select(OrderItem.id).where(OrderItem.order_id == order_id)
                                    .order_by(OrderItem.position)))


def order_status(states: list[str]) -> str:
    """One word for an order from its items' states."""
    if states and all(state == "ready" for state in states):
        return "ready"
    if any(state in ("queued", "rendering") for state in states):
        return "rendering" if any(state in ("rendering", "ready") for state in states) else "queued"
    return "failed"
