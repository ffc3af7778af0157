"""The REST API, ``/api/v1``: templates, quotes, orders and their files, and the OpenAPI document.

Views are thin: parse the JSON, call the core or the order book, enqueue, answer. Invalid
input is a 422 listing every problem as ``{"field": "items[0].params.width", "message": ...}``;
a body that is not JSON is a 400.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for
from sqlalchemy import select

import parametric
from parametric import FieldError, ValidationError
from parametric.errors import InfrastructureError, infrastructure_fault
from parametric.materials import get_material

from . import limits, machines
from .builds import BuildFailed, Preparing
from .errors import errors_response, fault_response, json_errors
from .limits import RateLimited
from .models import Job, Order, OrderItem
from .openapi import openapi_document
from .orders import downloads, tokens, tracking
from .orders.placing import (
    Client,
    IdempotencyConflict,
    IdempotencyForeign,
    OrderRequest,
    TooManyOrders,
    check_idempotency_key,
    item_ids,
    load_order,
    order_status,
    parse_item,
    parse_order,
    place_order,
    request_hash,
    snap_line,
    snap_order,
)
from .orders.plates import NO_PLATES, ask_plates
from .orders.quotes import instant_quote, price_order, quote_line
from .orders.totals import order_total
from .services import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

MIMETYPES = {"step": "application/step", "stl": "model/stl", "3mf": "model/3mf", "glb": "model/gltf-binary",
             "svg": "image/svg+xml", "dxf": "image/vnd.dxf", "manifest": "application/json"}


class BadJson(Exception):
    """The request body is not JSON."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def json_body() -> Any:
    """The parsed body; raises :class:`BadJson` (→ 400). Werkzeug refuses an oversized body with 413 first."""
    data = request.get_data(cache=True)
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise BadJson(str(error)) from None


@bp.errorhandler(BadJson)
def bad_json(error: BadJson) -> Response:
    return json_errors(400, f"the request body must be JSON (Content-Type: application/json): {error}")


# -- templates ----------------------------------------------------------------------------


def _template_summary(template: parametric.Template) -> dict[str, Any]:
    return {**template.summary(), "presets": list(template.presets),
            "links": {"self": url_for("api.show_template", template_id=template.id)}}


@bp.get("/templates")
def list_templates() -> Any:
    return {"templates": [_template_summary(t) for t in parametric.templates()]}


@bp.get("/templates/<template_id>")
def show_template(template_id: str) -> Any:
    try:
        template = parametric.get_template(template_id)
    except ValidationError as error:
        return errors_response([FieldError("template_id", e.message) for e in error.errors], 404)
    schema = template.schema(machines.stocked(services().database))  # sheet thicknesses: x-stocked by material
    return {**_template_summary(template), "schema": schema,
            "units": {name: field.get("unit", "") for name, field in schema["properties"].items()},
            "preset_params": schema["x-presets"]}


# -- quotes ---------------------------------------------------------------------------------


@bp.post("/quotes")
def create_quote() -> Any:
    """The price and lead time of one line (200), or 202 ``{"state": "preparing", "retry_after"}`` with
    ``Retry-After`` while a worker measures a configuration not seen before: send the same request again
    then. While it is sliced, a printed line whose printers have enough past slices is answered at once with
    202 ``{"state": "estimate", "figures": "estimate", "estimate": {"error_pct", "low", "high"}, ...quote}``: an
    estimate from the printers' models, replaced by the sliced quote (200, ``"figures": "final"``); checkout and
    orders always use the sliced one. Numbers are snapped to their fields' steps first (``snapped`` says which
    moved; values written in inches or feet are kept exact); 429 with ``Retry-After`` when this client asked for
    too many new configurations."""
    body = json_body()
    item, problems = parse_item(body, "", int(services().config["MAX_QUANTITY"]),
                                stocked=machines.stocked(services().database))
    if problems or item is None:
        return errors_response(problems)
    item, snapped, problems = snap_line(item, body)
    if problems or item is None:
        return errors_response(problems)
    try:
        quoted = quote_line(item, services(), limits.client_address())
    except BuildFailed as error:
        return errors_response([FieldError("params", error.reason)])
    except RateLimited as error:
        response = json_errors(429, str(error))
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(quoted, Preparing):  # being sliced: an instant estimate meanwhile, if the printers' history allows
        instant = instant_quote(item, services())
        if isinstance(instant, str):
            response = jsonify(state="preparing", retry_after=quoted.retry_after, params=item.params,
                               snapped=snapped, estimate_unavailable=instant)
        else:
            response = jsonify(state="estimate", retry_after=quoted.retry_after, **instant, snapped=snapped)
        response.status_code = 202
        response.headers["Retry-After"] = str(quoted.retry_after)
        response.headers["Cache-Control"] = "no-store"
        return response
    return {**quoted, "snapped": snapped}


# -- orders -----------------------------------------------------------------------------------


def describe_production(jobs: list[Any], staff: bool = False,
                        quote: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """An item's manufacturing jobs: part, state (and in workshop words), progress and the estimated machine time:
    the job's own (its slicer's or CAM's) once it has one; until then, for a part made in one job, the time the
    item was quoted at (``quote``, its record), so the figure the customer was shown does not vanish meanwhile."""
    described = []
    replaced = tracking.replacing(jobs)
    quoted = {part["name"]: part.get("machine_time_s") for part in (quote or {}).get("parts", [])}
    jobs_per_part = Counter(job.part for job in jobs)
    for job in jobs:
        estimates = job.estimates or {}
        seconds = estimates.get("print_time_s", estimates.get("machining_time_s"))
        made_again = bool((job.batching or {}).get("remake_of"))
        if seconds is None and not made_again and jobs_per_part[job.part] == 1:
            seconds = quoted.get(job.part)
        entry = {"part": job.part, "state": job.state, "kind": job.kind,
                 "label": tracking.job_words(job.kind, job.state, job.cancel_reason, made_again=made_again,
                                             replaced=replaced.get(job.id)),
                 "made_again": made_again, "replaced": job.id in replaced,
                 "process": tracking.process_words(job.kind),
                 "progress": round(job.progress or 0.0, 1), "estimated_time_s": seconds}
        if staff:
            entry.update(job_id=job.id, machine=job.machine, last_error=job.last_error)
        described.append(entry)
    return described


def file_url(order: Order, item: OrderItem, filename: str, token: str | None, staff: bool) -> str | None:
    """Where a file of the order is downloaded: the customer's link carries the token (which only the customer
    has: the database keeps its hash), staff download it through the staff API."""
    if token is not None:
        return url_for("api.download", order_id=order.id, position=item.position, filename=filename, token=token)
    if staff:
        return url_for("staff.download", order_id=order.id, position=item.position, filename=filename)
    return None


def archive_url(order: Order, item: OrderItem, token: str | None, staff: bool) -> str | None:
    """Where the item's "download all" zip is downloaded (as :func:`file_url`)."""
    if token is not None:
        return url_for("api.download_archive", order_id=order.id, position=item.position, token=token)
    if staff:
        return url_for("staff.download_archive", order_id=order.id, position=item.position)
    return None


def describe_item(order: Order, item: OrderItem, staff: bool = False, jobs: list[Any] | None = None,
                  token: str | None = None) -> dict[str, Any]:
    files, manifest, archive, plates, plate_materials = [], None, None, None, []
    if item.state == "ready":
        copies = downloads.part_copies(services().config["OUTPUT_FOLDER"], item)
        archive = archive_url(order, item, token, staff)
        printed = downloads.printed_parts(services().config["OUTPUT_FOLDER"], item) if token is not None else []
        if printed:
            plates = url_for("api.download_plates", order_id=order.id, position=item.position)
            plate_materials = [{"id": material.id, "name": material.name} for material in sorted(
                {get_material(downloads.printed_material(item, part)) for part, _ in printed},
                key=lambda material: material.id)]
        for artifact in item.artifacts:
            url = file_url(order, item, artifact.filename, token, staff)
            if artifact.format == "manifest":
                manifest = url
                continue
            files.append({"format": artifact.format, "part": artifact.part, "filename": artifact.filename,
                          "download_name": downloads.saved_name(order, item, artifact, copies),
                          "bytes": artifact.bytes, "sha256": artifact.sha256, "url": url})
    described = {"position": item.position, "template": item.template, "version": item.template_version,
                 "params": item.params, "quantity": item.quantity, "material": item.material, "state": item.state,
                 "reason": item.reason if item.state == "failed" else None, "attempts": item.attempts,
                 "files": files, "manifest": manifest, "archive": archive, "plates": plates,
                 "plate_materials": plate_materials,
                 "production": describe_production(jobs or [], staff, item.quote),
                 "quote": item.quote}
    described["progress"], described["label"] = tracking.line_words(item.state, described["production"])
    if staff:
        described.update(id=item.id, last_error=item.last_error or item.reason, lease_owner=item.lease_owner,
                         rendered_by=item.rendered_by,
                         lease_expires_at=_time(item.lease_expires_at), heartbeat_at=_time(item.heartbeat_at),
                         render_seconds=item.render_seconds, finished_at=_time(item.finished_at))
    return described


def _time(value: Any) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value is not None else None


def describe_order(order: Order, token: str | None = None, staff: bool = False, show_token: bool = False,
                   unpriced: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The order as the API shows it; ``token`` (the request's) goes into its file links, and into the answer
    itself with ``show_token`` (when the order is placed: the only time the customer is given it). Its ``total``
    is the one the confirmation and the tracking page show (``web.orders.totals.order_total``); ``unpriced``:
    why a line has no price yet, by position (:func:`web.orders.quotes.price_order`)."""
    described: dict[str, Any] = {
        "id": order.id, "status": order_status([item.state for item in order.items]),
        "created_at": _time(order.created_at), "customer": {"name": order.customer_name, "email": order.customer_email},
        "units": order.units or "mm",
    }
    if show_token:
        described["token"] = token
    described["links"] = {"self": url_for("api.show_order", order_id=order.id)}
    with services().database.session() as session:
        found = session.scalars(select(Job).where(Job.item_id.in_([item.id for item in order.items]))
                                .order_by(Job.id)).all()
    by_item: dict[int, list[Any]] = {}
    for job in found:
        by_item.setdefault(job.item_id, []).append(job)
    described["items"] = [describe_item(order, item, staff, by_item.get(item.id, []), token) for item in order.items]
    described["progress"], described["label"] = tracking.order_words(
        [(item["progress"], item["label"]) for item in described["items"]])
    described["total"] = order_total([item.quote for item in sorted(order.items, key=lambda i: i.position)],
                                     unpriced)
    return described


def priced_order(order: Order, token: str | None = None, show_token: bool = False) -> dict[str, Any]:
    """The customer's view of the order (:func:`describe_order`), its lines priced first if it was placed without
    their quotes (through this API): the same total the shop's pages show."""
    unpriced = price_order(order, services())
    return describe_order(order, token=token, show_token=show_token, unpriced=unpriced)


def order_client() -> Client:
    """The placing client (its address) with the app's secret and the idempotency keys' lifetime."""
    config = services().config
    return Client(limits.client_address(), str(current_app.secret_key).encode(), float(config["IDEMPOTENCY_HOURS"]))


def order_admission(client: Client) -> Callable[[], float | None]:
    """The orders-per-client limit, counted only when a new order is about to be made."""
    config = services().config

    def admit() -> float | None:
        wait = limits.hit(services().database, "orders", client.address, int(config["ORDERS_PER_CLIENT"]),
                          float(config["ORDERS_WINDOW_SECONDS"]))
        if wait is not None:
            log.warning("order refused: too many orders from %s (%.0f s until the next)", client.address, wait)
        return wait

    return admit


def parse_order_body(body: Any) -> OrderRequest:
    """The order request under this app's limits (items, quantity, pieces in all), or a ValidationError."""
    config = services().config
    return parse_order(body, int(config["MAX_ITEMS_PER_ORDER"]), int(config["MAX_QUANTITY"]),
                       int(config["MAX_UNITS_PER_ORDER"]), stocked=machines.stocked(services().database))


def too_many_orders(retry_after: float) -> Response:
    return limits.too_many(retry_after, f"too many orders from this address; you can place another in "
                                        f"{limits.in_words(retry_after)}")


FOREIGN_KEY_MESSAGE = ("this Idempotency-Key was already used by another client; use a new, unique key for "
                       "each order (e.g. a UUID)")


@bp.post("/orders")
def create_order() -> Any:
    key = request.headers.get("Idempotency-Key")
    body = json_body()
    problems = check_idempotency_key(key)
    try:
        order_request = parse_order_body(body)
    except ValidationError as error:
        problems = error.errors + problems
    if problems:
        return errors_response(problems)
    order_request, snapped, problems = snap_order(order_request, body)  # as quotes and previews are
    if problems:
        return errors_response(problems)
    generation = services().generation
    keys = [generation.key(item.template, item.params) for item in order_request.items]
    client = order_client()
    try:
        placed = place_order(services().database, order_request, keys, key, request_hash(body), client,
                             order_admission(client))
    except IdempotencyConflict:
        return errors_response([FieldError("Idempotency-Key", "this key was already used for a different order "
                                           "request; the first order stands. Send a new key for a new order.")])
    except IdempotencyForeign:
        return json_errors(409, FOREIGN_KEY_MESSAGE, "Idempotency-Key")
    except TooManyOrders as error:
        return too_many_orders(error.retry_after)
    if placed.created:
        generation.start(item_ids(services().database, placed.order_id), services().queue.enqueue)
    order = load_order(services().database, placed.order_id)
    assert order is not None
    response = jsonify({**priced_order(order, token=placed.token, show_token=True), "snapped": snapped})
    response.status_code = 201
    response.headers["Location"] = url_for("api.show_order", order_id=placed.order_id)
    if not placed.created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def request_token() -> str | None:
    """The order token the request carries: header ``X-Order-Token`` or ``?token=``."""
    return request.headers.get("X-Order-Token") or request.args.get("token")


def _authorized_order(order_id: str) -> Order | Response:
    """The order if the request carries its token (header ``X-Order-Token`` or ``?token=``), else an error."""
    token = request_token()
    if not token:
        return json_errors(403, "this order can only be read with its token: send the X-Order-Token header or "
                                "?token= (the token came with the order)", "token")
    order = load_order(services().database, order_id) if len(order_id) <= 64 else None
    if order is None or not tokens.matches(order.token_hash, token):
        return json_errors(404, "no order with this id and token")
    return order


@bp.get("/orders/<order_id>")
def show_order(order_id: str) -> Any:
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    return priced_order(order, token=request_token())


def _ready_item(order: Order, position: int) -> OrderItem | None:
    return next((item for item in order.items if item.position == position and item.state == "ready"), None)


def send_artifact(order: Order, position: int, filename: str) -> Response:
    """One generated file of the order; only files recorded for the item, and only inside the output folder.
    It is saved under a name that says order, item, product, part and copies (:func:`downloads.saved_name`)."""
    item = _ready_item(order, position)
    artifact = next((a for a in item.artifacts if a.filename == filename), None) if item is not None else None
    output = services().config["OUTPUT_FOLDER"]
    try:
        handle = downloads.open_checked(output, artifact) if artifact is not None else None
    except downloads.CorruptFile as error:  # the order's own copy changed on disk: never served under its record
        return fault_response(InfrastructureError("corrupt_file", str(error)))
    if handle is None or item is None or artifact is None:
        return json_errors(404, "no such file for this order item")
    name = downloads.saved_name(order, item, artifact, downloads.part_copies(output, item))
    return send_file(handle, mimetype=MIMETYPES.get(artifact.format, "application/octet-stream"), as_attachment=True,
                     download_name=name, etag=artifact.sha256, max_age=0, conditional=True)


def send_archive(order: Order, position: int) -> Response:
    """The item's "download all" zip: every file and its manifest, named by order, item, product, part and copies,
    each checked against its record as it goes in."""
    item = _ready_item(order, position)
    try:
        archive = downloads.build_archive(services().config["OUTPUT_FOLDER"], order, item) if item else None
    except downloads.CorruptFile as error:
        return fault_response(InfrastructureError("corrupt_file", str(error)))
    except OSError as error:  # a full or read-only disk is ours (503); anything else is a fault to fix (500)
        fault = infrastructure_fault(error)
        if fault is None:
            raise
        return fault_response(fault)
    if archive is None:
        return json_errors(404, "this order item has no files to download yet")
    return send_file(archive.path, mimetype="application/zip", as_attachment=True, download_name=archive.name,
                     etag=archive.etag, max_age=0, conditional=True)


@bp.get("/orders/<order_id>/items/<int:position>/files/<path:filename>")
def download(order_id: str, position: int, filename: str) -> Any:
    """One generated file, for the holder of the order's token."""
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    return send_artifact(order, position, filename)


@bp.get("/orders/<order_id>/items/<int:position>/archive")
def download_archive(order_id: str, position: int) -> Any:
    """Every file of an item in one zip, for the holder of the order's token."""
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    return send_archive(order, position)


def send_plates(archive: downloads.Archive) -> Response:
    """Made plates as the customer saves them: one plate as its 3MF, several as a zip; ETag, revalidated."""
    mimetype = "model/3mf" if archive.name.endswith(".3mf") else "application/zip"
    return send_file(archive.path, mimetype=mimetype, as_attachment=True, download_name=archive.name,
                     etag=archive.etag, max_age=0, conditional=True)


@bp.get("/orders/<order_id>/items/<int:position>/plates")
def download_plates(order_id: str, position: int) -> Any:
    """Print-ready plates of an item's printed parts for the customer's own printer (``?printer=``): one
    PrusaSlicer project 3MF per plate (a zip when there are several), for the holder of the order's token. A
    worker slices them (``web.orders.plates``): 202 ``{"state": "preparing", "retry_after"}`` with
    ``Retry-After`` until they are made, then 200 with the file; 422 naming ``printer`` for a printer we do not
    offer or parts that do not fit on it; 503 with ``Retry-After`` while a fault of ours is being retried."""
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    try:
        plates = ask_plates(services(), order, _ready_item(order, position), request.args.get("printer", ""),
                            limits.client_address())
    except RateLimited as error:
        return limits.too_many(error.retry_after, str(error))
    if plates.problem is not None:
        return errors_response([plates.problem])
    if plates.archive is not None:
        return send_plates(plates.archive)
    if plates.preparing is None:
        return json_errors(404, NO_PLATES)
    if plates.fault is not None:
        return fault_response(InfrastructureError("build_retried", plates.fault), plates.preparing.retry_after)
    response = jsonify(state="preparing", retry_after=plates.preparing.retry_after)
    response.status_code = 202
    response.headers["Retry-After"] = str(plates.preparing.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi() -> Any:
    return openapi_document(services().config, current_app.extensions.get("openapi"))
