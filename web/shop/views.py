"""The customer's pages: catalog, configurator, checkout, confirmation and order tracking.

Every page works without JavaScript: the configurator is a plain form whose values the
server validates with the template's own model (``web.orders.placing.parse_item``) and re-renders
with the messages next to their fields; checkout places the order through the same
functions as the REST API. The live preview (``/configure/<id>/preview``), the live quote
(``POST /api/v1/quotes``) and the tracking page's polling are progressive enhancement.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

import parametric
from parametric import FieldError, Template, ValidationError
from parametric.materials import materials as material_table
from parametric.units import LENGTH_UNITS, format_duration, length_value

from .. import limits, machines
from ..api import (
    _authorized_order,
    _ready_item,
    order_admission,
    order_client,
    parse_order_body,
    priced_order,
    request_token,
    send_plates,
)
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
    snap_item,
)
from ..orders.plates import ask_plates
from ..orders.quotes import quote_line, quote_record
from ..orders.totals import charged_records
from ..services import services
from .catalog import Catalog, templates_by_family
from .forms import (
    PREFIX,
    display_values,
    field_errors,
    form_fields,
    form_groups,
    parameter_rows,
    params_from_form,
    units_from,
)
from .preview import preview_file, request_preview

bp = Blueprint("shop", __name__)
FINAL_JOB_STATES = ("done", "failed", "cancelled")

SIZE_SYSTEMS = (("EU", "EU"), ("US-M", "US M"), ("US-W", "US W"), ("UK", "UK"))


def catalog() -> Catalog:
    found = current_app.extensions.get("parametric_catalog")
    if found is None:
        found = current_app.extensions["parametric_catalog"] = Catalog(services())
    return found


def client_address() -> str:
    """Who is asking, for the per-client limit on new builds (``web.limits.client_address``)."""
    return limits.client_address()


def _retry_later(response: Response, seconds: int) -> Response:
    response.headers["Retry-After"] = str(seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


PREPARING_PICTURE = ('<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360" viewBox="0 0 480 360">'
                     '<rect width="480" height="360" fill="#eef1f4"/><text x="240" y="185" font-family="sans-serif" '
                     'font-size="20" text-anchor="middle" fill="#555">Picture being prepared…</text></svg>')


def _template(template_id: str) -> Template:
    try:
        return parametric.get_template(template_id)
    except ValidationError:
        abort(404, description=f"We have no product called “{template_id}”. Every product we make is in the "
                               "catalog.")


def is_footwear(template: Template) -> bool:
    """Footwear sized by foot length, which a shoe-size picker can fill."""
    fields = template.Params.model_fields
    return template.family == "footwear" and "foot_length" in fields and "shoe_size" in fields


# -- catalog ----------------------------------------------------------------------------------


@bp.get("/")
def index() -> Any:
    families = templates_by_family()
    prices = catalog().from_prices([t for group in families.values() for t in group])  # the fleet read once
    return render_template("shop/catalog.html", families=families, prices=prices)


@bp.get("/catalog/<template_id>.png")
def picture(template_id: str) -> Any:
    template = _template(template_id)
    try:
        path = catalog().picture(template)
    except BuildFailed:
        abort(404, description="This product has no picture yet.")
    if isinstance(path, Preparing):  # a worker is drawing it: a placeholder until then
        return _retry_later(Response(PREPARING_PICTURE, status=202, mimetype="image/svg+xml"), path.retry_after)
    return send_file(path, mimetype="image/png", max_age=3600)


# -- configurator -------------------------------------------------------------------------------


def _item_request(template: Template, values: Any) -> tuple[ItemRequest | None, list[FieldError]]:
    """The configured order line from form values (or a preview's query string), its numbers snapped to their
    fields' steps (``web.orders.placing.snap_item``)."""
    item, problems, _ = _snapped_request(template, values)
    return item, problems


def _snapped_request(template: Template, values: Any
                     ) -> tuple[ItemRequest | None, list[FieldError], dict[str, dict[str, Any]]]:
    typed = (values.get("quantity") or "1").strip()
    quantity = whole_number(typed)
    units = units_from(values)
    raw = {"template": template.id, "params": params_from_form(template, values, units),
           "quantity": typed if quantity is None else quantity, "material": values.get("material") or None}
    item, problems = parse_item(raw, "", int(services().config["MAX_QUANTITY"]), units,
                                machines.stocked(services().database))
    if item is None:
        return None, problems, {}
    if units not in METRIC_UNITS:  # 6 ft is 1828.8 mm: a customer in inches cannot land on a 10 mm step
        return item, problems, {}
    snapped, moved, problems = snap_item(item)
    return snapped, problems, moved


METRIC_UNITS = ("mm", "cm")
"""Units whose values are snapped to the fields' (millimetre) steps before the cache key is made; values typed
in inches or feet are kept exact, as the customer gave them."""


def _configurator(template: Template, values: dict[str, str], units: str, errors: dict[str, list[str]],
                  preset: str | None = None, status: int = 200) -> Any:
    resolved = template.resolve({}, preset).canonical()
    lengths = {f.name for group in form_groups(template) for f in group.fields if f.is_length}
    derived = {name: length_value(value, units) if name in lengths and isinstance(value, int | float) else value
               for name, value in resolved.items()}
    return render_template(
        "shop/configure.html", template=template, groups=form_groups(template, machines.stocked(services().database)),
        values=values, units=units, material=values.get("material") or template.default_material,
        unit_systems=LENGTH_UNITS, share=share_url(template, values, units, preset),
        errors=errors, preset=preset, derived=derived, footwear=is_footwear(template),
        size_systems=SIZE_SYSTEMS, materials=[parametric_material(m) for m in template.materials],
        max_quantity=int(services().config["MAX_QUANTITY"])), status


def share_url(template: Template, values: Mapping[str, str], units: str, preset: str | None) -> str:
    """The address that restores this configuration exactly: every field as it was typed (a value typed in inches
    stays the text typed, never a rounded conversion), the units, the preset it started from, material and
    quantity. A switch that is off is left out, as a form leaves it out."""
    query: dict[str, str] = {}
    if preset:
        query["preset"] = preset
    query["units"] = units
    for form_field in form_fields(template):
        text = str(values.get(form_field.input_name) or "")
        if form_field.kind == "switch":
            if text.lower() in ("on", "true", "1", "yes"):
                query[form_field.input_name] = "on"
            continue
        query[form_field.input_name] = text
    query["material"] = str(values.get("material") or template.default_material)
    query["quantity"] = str(values.get("quantity") or "1")
    return url_for("shop.configure", template_id=template.id, _external=True, **query)


def parametric_material(material_id: str) -> dict[str, Any]:
    from parametric.materials import get_material

    material = get_material(material_id)
    return {"id": material.id, "name": material.name, "process": material.process}


@bp.get("/configure/<template_id>")
def configure(template_id: str) -> Any:
    template = _template(template_id)
    preset = request.args.get("preset")
    if preset not in template.presets:
        preset = None
    units = units_from(request.args)
    if "csrf_token" in request.args or "share" in request.args:
        # the form sent here by its "Link to this configuration" button (no JavaScript needed): answered with
        # the configuration's own address, which never carries the session's form token
        values = {k: v for k, v in request.args.items() if k not in ("csrf_token", "share")}
        return redirect(share_url(template, values, units, preset) + "#share", 303)
    if any(name.startswith(PREFIX) for name in request.args):  # a configuration given in the address
        return _configurator(template, dict(request.args.items()), units, {}, preset)
    explicit = set(template.presets[preset].params) if preset else set()
    values = display_values(template, template.resolve({}, preset).canonical(), explicit, units)
    values["quantity"] = "1"
    values["material"] = (template.presets[preset].material if preset else None) or template.default_material
    return _configurator(template, values, units, {}, preset)


@bp.post("/configure/<template_id>")
def configure_submit(template_id: str) -> Any:
    """Validate the configuration; show it again with messages, or go on to checkout."""
    return _to_checkout(_template(template_id), request.form)


@bp.get("/configure/<template_id>/checkout")
def configure_quote(template_id: str) -> Any:
    """The no-JavaScript path while a quote is being prepared: this page refreshes itself until the price is
    there, then shows the checkout (the configuration is in the address, so a refresh is a plain GET)."""
    return _to_checkout(_template(template_id), request.args)


def _to_checkout(template: Template, form: Any) -> Any:
    units = units_from(form)
    item, problems = _item_request(template, form)
    values = _as_typed(template, {k: v for k, v in form.items() if k != "csrf_token"}, units)
    preset = form.get("preset") if form.get("preset") in template.presets else None
    if item is None:
        return _configurator(template, values, units, field_errors(problems), preset, status=422)
    try:
        quoted = quote_line(item, services(), client_address())
    except BuildFailed as error:
        return _configurator(template, values, units, field_errors([FieldError("params", error.reason)]), preset,
                             status=422)
    except RateLimited as error:
        return _too_many(error)
    if isinstance(quoted, Preparing):
        # the values as sent (exact millimetres from the script), not as shown again: 150 mm shown as 5.906 in
        # would come back as 150.0124 mm, another configuration than the one being priced
        sent = {k: v for k, v in form.items() if k != "csrf_token"}
        again = url_for("shop.configure_quote", template_id=template.id, **sent)
        return _preparing(quoted, again, f"Working out the price of your {template.name}…")
    line = {"template": template.id, "params": item.params, "quantity": item.quantity, "material": item.material}
    return _checkout(template, line, quoted, {"name": "", "email": ""}, {}, uuid.uuid4().hex, units=units)


def _as_typed(template: Template, values: dict[str, str], units: str) -> dict[str, str]:
    """Form values to show again: a length the core reads (``"812.8mm"`` from the script) in the form's units,
    anything else exactly as it was typed."""
    from parametric.units import UnitError, to_mm

    shown = dict(values)
    for group in form_groups(template):
        for form_field in group.fields:
            text = values.get(form_field.input_name, "").strip()
            if not form_field.is_length or not text or text.replace(".", "", 1).isdigit():
                continue
            try:
                shown[form_field.input_name] = length_value(to_mm(text), units, 4 if units == "mm" else 3)
            except UnitError:
                pass
    return shown


def _preparing(preparing: Preparing, again: str, title: str) -> Response:
    """A page that refreshes itself (no JavaScript needed) until the build it waits for is there: 202."""
    page = render_template("shop/preparing.html", title=title, again=again, seconds=preparing.retry_after)
    response = _retry_later(Response(page, status=202, mimetype="text/html"), preparing.retry_after)
    response.headers["Refresh"] = f"{preparing.retry_after}; url={again}"
    return response


def _too_many(error: RateLimited) -> Response:
    page = render_template("error.html", title="Too many new configurations", message=str(error).capitalize() + ".")
    return _retry_later(Response(page, status=429, mimetype="text/html"), error.retry_after)


# -- the live preview (progressive enhancement) ------------------------------------------------


@bp.get("/configure/<template_id>/preview")
def preview(template_id: str) -> Any:
    """Validate the configuration in the query string and render its preview.

    200: ``{"params", "bbox_mm", "mass_g", "glb", "cache_hit", "quote_request"}``; 422:
    ``{"errors": [{"field": "params.width", "message": ...}]}``, fields named as the form's inputs.
    """
    template = _template(template_id)
    item, problems, snapped = _snapped_request(template, request.args)
    if item is None:
        return _errors(problems)
    try:
        manifest = request_preview(item, services(), client_address())
    except BuildFailed as error:
        return _errors([FieldError("params", error.reason)])
    except RateLimited as error:
        response = jsonify(errors=[{"field": "", "message": str(error)}], retry_after=error.retry_after)
        response.status_code = 429
        return _retry_later(response, error.retry_after)
    # the units go with it: a preview in inches is of exact values, and the quote must price the same ones
    quote_request = {"template": template.id, "params": item.params, "quantity": item.quantity,
                     "material": item.material, "units": units_from(request.args)}
    if isinstance(manifest, Preparing):
        response = jsonify(state="preparing", retry_after=manifest.retry_after, params=item.params, snapped=snapped,
                           quote_request=quote_request)
        response.status_code = 202
        return _retry_later(response, manifest.retry_after)
    glb = next(record["filename"] for record in manifest.files if record["format"] == "glb")
    response = jsonify(
        state="ready", params=item.params, snapped=snapped, bbox_mm=manifest.bbox_mm, mass_g=manifest.mass_g,
        cache_hit=manifest.cache_hit, glb=url_for("shop.preview_glb", key=manifest.cache_key, filename=glb),
        quote_request=quote_request)
    response.headers["Cache-Control"] = "no-store"
    return response


def _errors(problems: list[FieldError]) -> Response:
    response = jsonify(errors=[problem.to_dict() for problem in problems])
    response.status_code = 422
    return response


@bp.get("/preview/<key>/<filename>")
def preview_glb(key: str, filename: str) -> Any:
    """A preview GLB from the cache; its address names its content, so it is cached for good."""
    found = preview_file(services().generation, key, filename)
    if found is None:
        abort(404)
    data, digest = found
    response = send_file(io.BytesIO(data), mimetype="model/gltf-binary", max_age=365 * 24 * 3600, etag=digest,
                         download_name=filename, conditional=True)
    response.headers["Cache-Control"] += ", immutable"
    return response


@bp.get("/shoe-sizes.json")
def shoe_sizes() -> Any:
    """The shoe-size table (foot length in mm per system and size, and the core's spelling of the size, which the
    preview's ``params.shoe_size`` uses), for the configurator's size picker."""
    try:
        from templates_models.footwear.sizing import format_shoe_size, size_table
    except ImportError:
        abort(404)
    table = size_table()
    systems = [{"id": system, "label": label,
                "sizes": [{"size": size, "foot_length_mm": length, "text": format_shoe_size(name, size)}
                          for (name, size), length in sorted(table.items()) if name == system]}
               for system, label in SIZE_SYSTEMS]
    response = jsonify(systems=[s for s in systems if s["sizes"]])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# -- checkout -------------------------------------------------------------------------------------


def _checkout(template: Template, line: dict[str, Any], quoted: dict[str, Any], customer: dict[str, str],
              errors: dict[str, list[str]], order_key: str, status: int = 200, units: str = "mm") -> Any:
    change = {**display_values(template, line["params"], set(line["params"]), units),
              "quantity": str(line["quantity"]), "material": line["material"], "units": units}
    return render_template("shop/checkout.html", template=template, line=line, quote=quoted, customer=customer,
                           errors=errors, order_key=order_key, item_json=json.dumps(line, sort_keys=True),
                           rows=parameter_rows(template.id, line["params"], units), units=units,
                           materials={m.id: m.name for m in material_table().values()},
                           duration=format_duration,
                           change_url=url_for("shop.configure", template_id=template.id, **change)), status


@bp.post("/checkout")
def checkout() -> Any:
    """Place the order (once per checkout form, by its idempotency key) and show the confirmation."""
    form = request.form
    try:
        line = json.loads(form.get("item", ""))
        template = parametric.get_template(line["template"])
    except (ValueError, KeyError, TypeError, ValidationError):
        abort(400, description="The order form was incomplete; please configure the product again.")
    customer = {"name": form.get("name", ""), "email": form.get("email", "")}
    order_key = form.get("order_key") or uuid.uuid4().hex
    units = units_from(form)
    body = {"customer": customer, "items": [line], "units": units}
    config = services().config
    problems = check_idempotency_key(order_key)
    try:
        order_request = parse_order_body(body)
    except ValidationError as error:
        problems = error.errors + problems
    item, item_problems = parse_item(line, "", int(config["MAX_QUANTITY"]), units,
                                     machines.stocked(services().database))
    if item is None:
        abort(400, description="The configuration no longer validates: "
              + "; ".join(p.message for p in item_problems))
    quoted = _quote_again(template, item)  # the figures the checkout page showed, from the quote's build
    if isinstance(quoted, Response):
        return quoted
    if problems:
        return _checkout(template, line, quoted, customer, field_errors(problems), order_key, 422, units)
    generation = services().generation
    keys = [generation.key(i.template, i.params) for i in order_request.items]
    client = order_client()
    try:
        placed = place_order(services().database, order_request, keys, order_key, request_hash(body), client,
                             order_admission(client),
                             quotes=charged_records([quote_record(quoted)], config["SETUP_FEE"]))
    except (IdempotencyConflict, IdempotencyForeign):
        problem = FieldError("", "this checkout form was already used for a different order; "
                                 "please configure the product again")
        return _checkout(template, line, quoted, customer, field_errors([problem]), uuid.uuid4().hex, 409, units)
    except TooManyOrders as error:
        problem = FieldError("", f"too many orders from this address for now; please try again in "
                                 f"{limits.in_words(error.retry_after)}")
        page, status = _checkout(template, line, quoted, customer, field_errors([problem]), order_key, 429, units)
        return page, status, {"Retry-After": limits.retry_after(error.retry_after)}
    if placed.created:
        generation.start(item_ids(services().database, placed.order_id), services().queue.enqueue)
    if placed.token is None:  # a replay whose token can no longer be unsealed (the secret key changed)
        abort(409, description="This order was already placed; please use the link from your confirmation.")
    return redirect(url_for("shop.confirmation", order_id=placed.order_id, token=placed.token), code=303)


def _quote_again(template: Template, item: ItemRequest) -> dict[str, Any] | Response:
    """The line's quote for showing the checkout again, or the page that waits for it (it was there a moment
    ago, so this is rare: its record was forgotten or the machines changed)."""
    try:
        quoted = quote_line(item, services(), client_address())
    except BuildFailed as error:
        abort(400, description=f"The configuration can no longer be made: {error.reason}")
    except RateLimited as error:
        return _too_many(error)
    if isinstance(quoted, Preparing):
        values = {**display_values(template, item.params, set(item.params)), "quantity": str(item.quantity),
                  "material": item.material}
        return _preparing(quoted, url_for("shop.configure_quote", template_id=template.id, **values),
                          f"Working out the price of your {template.name}…")
    return quoted


def _authorized(order_id: str) -> Any:
    """The order if the request's ``?token=`` is its token (the API's rule); a 404 page otherwise."""
    found = _authorized_order(order_id)
    if isinstance(found, Response):
        abort(404, description="We could not find an order with this link. Please open the tracking link from "
                               "your order confirmation again, copying all of it (the part after the question mark "
                               "is what lets you in).")
    return found


@bp.get("/orders/<order_id>/confirmation")
def confirmation(order_id: str) -> Any:
    order = _authorized(order_id)
    token = request_token()
    described = priced_order(order, token=token)
    tracking = url_for("shop.track", order_id=order.id, token=token, _external=True)
    return _private(render_template("shop/confirmation.html", order=described, tracking=tracking,
                                    lines=_lines(described), duration=format_duration))


@bp.get("/track/<order_id>")
def track(order_id: str) -> Any:
    order = _authorized(order_id)
    token = request_token()
    described = priced_order(order, token=token)
    api_url = url_for("api.show_order", order_id=order.id, token=token)
    making = any(job["state"] not in FINAL_JOB_STATES for item in described["items"] for job in item["production"])
    from parametric.fdm.profile import PrintSettings
    from parametric.fdm.vendors import home_printers

    return _private(render_template("shop/track.html", order=described, api_url=api_url, lines=_lines(described),
                                    duration=format_duration, making=making, token=token,
                                    home_printers=list(home_printers().values()),
                                    print_settings=PrintSettings()))


@bp.get("/track/<order_id>/items/<int:position>/plates")
def plates(order_id: str, position: int) -> Any:
    """The tracking page's "print it yourself" form, for a browser: while a worker slices the plates a page that
    says so for the printer chosen and asks again (its script in the background, else its ``<noscript>`` refresh),
    then the file itself, which the browser saves (``web.orders.plates``, as the API's ``download_plates``)."""
    order = _authorized(order_id)
    token = request_token()
    back = url_for("shop.track", order_id=order.id, token=token)
    printer = request.args.get("printer", "")
    try:
        asked = ask_plates(services(), order, _ready_item(order, position), printer, client_address())
    except RateLimited as error:
        return _too_many(error)
    if asked.archive is not None:
        return send_plates(asked.archive)
    if asked.problem is not None:
        page = render_template("shop/plates.html", title="These plates cannot be made", printer=asked.printer,
                               problem=asked.problem.message, back=back)
        return _private(page, 422)
    if asked.preparing is None:
        abort(404, description="This item has no printed parts to put on plates, or its files are not ready yet.")
    seconds = asked.preparing.retry_after
    again = url_for("shop.plates", order_id=order.id, position=position, token=token, printer=printer)
    title = "Your plates are taking longer" if asked.fault else "Your print-ready plates are being prepared"
    page = render_template("shop/plates.html", title=title, printer=asked.printer, again=again, seconds=seconds,
                           back=back, fault=asked.fault is not None)
    response = _private(page, 503 if asked.fault else 202)
    response.headers["Retry-After"] = str(seconds)  # no Refresh header: it would reload the page under its script too
    return response


def _private(page: str, status: int = 200) -> Response:
    """A page reached with the order's secret token: never kept by shared caches or the browser's."""
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _lines(described: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's items with their template names, material names and parameters ready to show, lengths in
    the units the customer ordered in."""
    lines = []
    names = {m.id: m.name for m in material_table().values()}
    for item in described["items"]:
        try:
            name = parametric.get_template(item["template"]).name
        except ValidationError:
            name = item["template"]
        lines.append({**item, "name": name, "material_name": names.get(item["material"], item["material"]),
                      "rows": parameter_rows(item["template"], item["params"], described.get("units", "mm"))})
    return lines
