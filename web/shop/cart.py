"""The cart: several configured products in one order and one checkout, with and without JavaScript.

The cart lives in the customer's session (the signed session cookie), so it survives a reload and
needs no account. Each line is kept as an order line of the REST API (template, the parameters
that differ from the template's defaults, quantity, material) and is validated again by the
template's own model whenever the cart is shown or checked out; the price is each line's quote
with one setup fee per process for the whole order (``web.orders.totals``). Checkout places one
order with every line through the same functions as the REST API, then empties the cart.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for

import parametric
from parametric import FieldError, ValidationError
from parametric.materials import materials as material_table
from parametric.units import LENGTH_UNITS, format_duration

from .. import limits
from ..api import order_admission, order_client, parse_order_body
from ..builds import BuildFailed, Preparing
from ..inputs import whole_number
from ..limits import RateLimited
from ..orders.placing import (
    IdempotencyConflict,
    IdempotencyForeign,
    ItemRequest,
    TooManyOrders,
    check_idempotency_key,
    item_ids,
    parse_item,
    place_order,
    request_hash,
)
from ..orders.quotes import quote_line, quote_record
from ..orders.totals import charged_records, order_price
from ..services import services
from .forms import field_errors, parameter_rows, units_from

bp = Blueprint("cart", __name__, url_prefix="/cart")
SESSION_KEY = "cart"
PROCESS_WORDS = {"fdm": "3D printing", "cnc": "CNC cutting"}


# -- the cart in the session ------------------------------------------------------------------------


def stored() -> list[dict[str, Any]]:
    """The cart's lines as kept in the session: order lines of the REST API."""
    lines = session.get(SESSION_KEY, {}).get("lines", [])
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


def cart_units() -> str:
    """The unit system the customer last configured in (lengths on the cart page are written in it)."""
    units = session.get(SESSION_KEY, {}).get("units")
    return units if units in LENGTH_UNITS else "mm"


def _save(lines: list[dict[str, Any]], units: str | None = None) -> None:
    session[SESSION_KEY] = {"lines": lines, "units": units or cart_units()}


def count() -> int:
    """How many pieces are in the cart (the lines' quantities added up), for the site header."""
    return sum(int(line.get("quantity", 1)) for line in stored() if isinstance(line.get("quantity", 1), int))


def compact(item: ItemRequest) -> dict[str, Any]:
    """An order line with only the parameters that differ from the template's defaults (the session cookie is
    small); the template's model gives the same canonical parameters back."""
    defaults = item.template.resolve({}).canonical()
    params = {name: value for name, value in item.params.items() if defaults.get(name) != value}
    return {"template": item.template.id, "params": params, "quantity": item.quantity, "material": item.material}


def add(item: ItemRequest, units: str) -> None:
    """Add a configured product; the same configuration in the same material again adds to its quantity."""
    line = compact(item)
    lines = stored()
    for existing in lines:
        if {k: v for k, v in existing.items() if k != "quantity"} == {k: v for k, v in line.items()
                                                                       if k != "quantity"}:
            existing["quantity"] = int(existing.get("quantity", 1)) + item.quantity
            break
    else:
        lines.append(line)
    _save(lines, units)


def resolved(units: str) -> list[tuple[dict[str, Any], ItemRequest | None, list[FieldError]]]:
    """Every stored line validated again by its template's model: (the line, its request or ``None``, the
    problems), lengths in the messages in ``units``."""
    max_quantity = int(services().config["MAX_QUANTITY"])
    return [(line, *parse_item(line, "", max_quantity, units)) for line in stored()]


# -- pages ------------------------------------------------------------------------------------------


def _line_view(index: int, line: dict[str, Any], item: ItemRequest | None, problems: list[FieldError],
               quoted: Any, units: str) -> dict[str, Any]:
    try:
        name = parametric.get_template(line.get("template", "")).name
    except (ValidationError, TypeError):
        name = str(line.get("template"))
    materials = {m.id: m.name for m in material_table().values()}
    params = item.params if item is not None else line.get("params") or {}
    return {"index": index, "name": name, "quantity": line.get("quantity"),
            "material_name": materials.get(str(line.get("material")), str(line.get("material"))),
            "rows": parameter_rows(str(line.get("template")), params, units) if isinstance(params, dict) else [],
            "problems": [p.message for p in problems], "quote": quoted if isinstance(quoted, dict) else None,
            "preparing": isinstance(quoted, Preparing)}


def _quotes(entries: list[tuple[dict[str, Any], ItemRequest | None, list[FieldError]]]) -> list[Any]:
    """Each line's quote, :class:`Preparing` while a worker works it out, or the reason it cannot be made."""
    quotes: list[Any] = []
    for _, item, _ in entries:
        if item is None:
            quotes.append(None)
            continue
        try:
            quotes.append(quote_line(item, services(), limits.client_address()))
        except BuildFailed as error:
            quotes.append(FieldError("", f"this configuration cannot be made: {error.reason}"))
    return quotes


def _page(customer: dict[str, str] | None = None, errors: dict[str, list[str]] | None = None,
          order_key: str | None = None, status: int = 200) -> Any:
    units = cart_units()
    entries = resolved(units)
    try:
        quotes = _quotes(entries)
    except RateLimited as error:
        page = render_template("error.html", title="Too many new configurations",
                               message=str(error).capitalize() + ".")
        response = Response(page, status=429, mimetype="text/html")
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    lines = []
    for index, ((line, item, problems), quoted) in enumerate(zip(entries, quotes, strict=True)):
        if isinstance(quoted, FieldError):
            problems, quoted = [*problems, quoted], None
        lines.append(_line_view(index, line, item, problems, quoted, units))
    priced = [line["quote"] for line in lines if line["quote"] is not None]
    ready = bool(lines) and len(priced) == len(lines)
    summary = order_price(priced, services().config["SETUP_FEE"]) if ready else None
    if summary is not None:
        for line, share in zip(lines, summary["lines"], strict=True):
            line["price"] = share
    preparing = [quoted for quoted in quotes if isinstance(quoted, Preparing)]
    page = render_template("shop/cart.html", lines=lines, summary=summary, ready=ready,
                           preparing=bool(preparing), customer=customer or {"name": "", "email": ""},
                           errors=errors or {}, order_key=order_key or uuid.uuid4().hex, units=units,
                           duration=format_duration, process_words=PROCESS_WORDS,
                           max_quantity=int(services().config["MAX_QUANTITY"]))
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    if preparing:  # no JavaScript needed: the page asks again until every price is there
        seconds = max(1, min(int(p.retry_after) for p in preparing))
        response.headers["Refresh"] = f"{seconds}; url={url_for('cart.show')}"  # a GET, after a checkout POST too
    return response


@bp.app_context_processor
def _cart_in_header() -> dict[str, Any]:
    """The cart's piece count for the site header, on every page."""
    return {"cart_count": count}


@bp.get("")
def show() -> Any:
    return _page()


@bp.post("/items")
def add_item() -> Any:
    """Add the configurator's product (its form, sent with the "Add to cart" button) and show the cart."""
    from .views import _as_typed, _configurator, _item_request, _template

    form = request.form
    template = _template(request.args.get("template", ""))
    units = units_from(form)
    item, problems = _item_request(template, form)
    if item is None:
        values = _as_typed(template, {k: v for k, v in form.items() if k != "csrf_token"}, units)
        return _configurator(template, values, units, field_errors(problems), status=422)
    if len(stored()) >= int(services().config["MAX_ITEMS_PER_ORDER"]) and compact(item) not in stored():
        flash(f"Your cart holds {len(stored())} products, as many as one order may; check out or remove one "
              "first.", "error")
        return redirect(url_for("cart.show"), code=303)
    add(item, units)
    flash(f"Added {item.quantity} × {template.name} to your cart.", "success")
    return redirect(url_for("cart.show"), code=303)


def _line_index(index: int) -> int:
    if not 0 <= index < len(stored()):
        abort(404, description="This product is no longer in your cart.")
    return index


@bp.post("/items/<int:index>/quantity")
def change_quantity(index: int) -> Any:
    """Set a line's quantity (0 removes it)."""
    index = _line_index(index)
    max_quantity = int(services().config["MAX_QUANTITY"])
    typed = (request.form.get("quantity") or "").strip()
    quantity = whole_number(typed)
    lines = stored()
    if quantity is None or quantity > max_quantity:
        flash(f"“{typed}” is not a quantity we can make: write a whole number from 1 to {max_quantity} "
              "(0 removes the product).", "error")
        return redirect(url_for("cart.show"), code=303)
    if quantity == 0:
        removed = lines.pop(index)
        flash(f"Removed {_name(removed)} from your cart.", "success")
    else:
        lines[index]["quantity"] = quantity
    _save(lines)
    return redirect(url_for("cart.show"), code=303)


@bp.post("/items/<int:index>/remove")
def remove_item(index: int) -> Any:
    index = _line_index(index)
    lines = stored()
    removed = lines.pop(index)
    _save(lines)
    flash(f"Removed {_name(removed)} from your cart.", "success")
    return redirect(url_for("cart.show"), code=303)


def _name(line: dict[str, Any]) -> str:
    try:
        return parametric.get_template(str(line.get("template"))).name
    except ValidationError:
        return str(line.get("template"))


@bp.post("/checkout")
def checkout() -> Any:
    """Place one order with every line of the cart (once per checkout form, by its idempotency key), empty the
    cart and show the confirmation."""
    form = request.form
    customer = {"name": form.get("name", ""), "email": form.get("email", "")}
    order_key = form.get("order_key") or uuid.uuid4().hex
    units = cart_units()
    lines = stored()
    if not lines:
        flash("Your cart is empty: configure a product and add it to the cart first.", "error")
        return redirect(url_for("cart.show"), code=303)
    body = {"customer": customer, "items": lines, "units": units}
    problems = check_idempotency_key(order_key)
    try:
        order_request = parse_order_body(body)
    except ValidationError as error:
        problems = error.errors + problems
        order_request = None
    if problems or order_request is None:
        return _page(customer, field_errors(_checkout_fields(problems)), order_key, 422)
    try:
        quotes = _quotes([(line, item, []) for line, item in zip(lines, order_request.items, strict=True)])
    except RateLimited:
        return _page(customer, {}, order_key, 429)
    if not all(isinstance(quoted, dict) for quoted in quotes):  # a price is being worked out again, or failed
        return _page(customer, {}, order_key, 409 if any(isinstance(q, FieldError) for q in quotes) else 202)
    records = charged_records([quote_record(quoted) for quoted in quotes], services().config["SETUP_FEE"])
    generation = services().generation
    keys = [generation.key(i.template, i.params) for i in order_request.items]
    client = order_client()
    try:
        placed = place_order(services().database, order_request, keys, order_key, request_hash(body), client,
                             order_admission(client), quotes=records)
    except (IdempotencyConflict, IdempotencyForeign):
        problem = FieldError("", "this checkout form was already used for a different order; please check "
                                 "your cart and place the order again")
        return _page(customer, field_errors([problem]), uuid.uuid4().hex, 409)
    except TooManyOrders as error:
        problem = FieldError("", f"too many orders from this address for now; please try again in "
                                 f"{limits.in_words(error.retry_after)}")
        response = _page(customer, field_errors([problem]), order_key, 429)
        response.headers["Retry-After"] = limits.retry_after(error.retry_after)
        return response
    if placed.created:
        generation.start(item_ids(services().database, placed.order_id), services().queue.enqueue)
    session.pop(SESSION_KEY, None)
    if placed.token is None:
        abort(409, description="This order was already placed; please use the link from your confirmation.")
    return redirect(url_for("shop.confirmation", order_id=placed.order_id, token=placed.token), code=303)


def _checkout_fields(problems: list[FieldError]) -> list[FieldError]:
    """The order's problems named as the cart page's fields: a line's problem on the page, the customer's by
    their inputs."""
    named = []
    for problem in problems:
        if problem.field.startswith("items"):
            named.append(FieldError("", f"a product in your cart: {problem.message}"))
        else:
            named.append(problem)
    return named
