"""The REST API, ``/api/v1``: templates, quotes, orders and their files, and the OpenAPI document.

Views are thin: parse the JSON, call the core or the order book, enqueue, answer. Invalid
input is a 422 listing every problem as ``{"field": "items[0].params.width", "message": ...}``;
a body that is not JSON is a 400.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import parametric
from parametric import FieldError, GeometryError, ValidationError

from .errors import errors_response, json_errors
from .models import Job, Order, OrderItem
from .openapi import openapi_document
from .orders.placing import (
    IdempotencyConflict,
    check_idempotency_key,
    item_ids,
    order_status,
    parse_item,
    parse_order,
    place_order,
    request_hash,
)
from .orders.quotes import quote_line
from .services import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")

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
    schema = template.schema()
    return {**_template_summary(template), "schema": schema,
            "units": {name: field.get("unit", "") for name, field in schema["properties"].items()},
            "preset_params": schema["x-presets"]}


# -- quotes ---------------------------------------------------------------------------------


@bp.post("/quotes")
def create_quote() -> Any:
    body = json_body()
    item, problems = parse_item(body, "", int(services().config["MAX_QUANTITY"]))
    if problems or item is None:
        return errors_response(problems)
    try:
        return quote_line(item, services())
    except GeometryError as error:
        return errors_response([FieldError("params", f"this configuration cannot be built: {error.reason}")])


# -- orders -----------------------------------------------------------------------------------


def _load_order(order_id: str) -> Order | None:
    with services().database.session() as session:
        return session.scalar(select(Order).where(Order.id == order_id)
                              .options(selectinload(Order.items).selectinload(OrderItem.artifacts)))


CUSTOMER_JOB_STATES = {"queued": "being prepared", "slicing": "being prepared", "ready": "waiting for its machine",
                       "sent": "on its machine", "printing": "being made", "done": "made",
                       "failed": "held up; our workshop is on it", "cancelled": "cancelled"}
"""What a customer reads of a manufacturing job's state (the workshop's reasons stay on the dashboard)."""


def describe_production(jobs: list[Any], staff: bool = False) -> list[dict[str, Any]]:
    """An item's manufacturing jobs: part, state in words, progress and the estimated machine time."""
    described = []
    for job in jobs:
        estimates = job.estimates or {}
        seconds = estimates.get("print_time_s", estimates.get("machining_time_s"))
        entry = {"part": job.part, "state": job.state, "label": CUSTOMER_JOB_STATES[job.state],
                 "process": "printing" if job.kind == "fdm" else "CNC cutting",
                 "progress": round(job.progress or 0.0, 1), "estimated_time_s": seconds}
        if staff:
            entry.update(job_id=job.id, machine=job.machine, last_error=job.last_error)
        described.append(entry)
    return described


def describe_item(order: Order, item: OrderItem, staff: bool = False, jobs: list[Any] | None = None
                  ) -> dict[str, Any]:
    files, manifest = [], None
    if item.state == "ready":
        for artifact in item.artifacts:
            url = url_for("api.download", order_id=order.id, position=item.position, filename=artifact.filename,
                          token=order.token)
            if artifact.format == "manifest":
                manifest = url
                continue
            files.append({"format": artifact.format, "part": artifact.part, "filename": artifact.filename,
                          "bytes": artifact.bytes, "sha256": artifact.sha256, "url": url})
    described = {"position": item.position, "template": item.template, "version": item.template_version,
                 "params": item.params, "quantity": item.quantity, "material": item.material, "state": item.state,
                 "reason": item.reason if item.state == "failed" else None, "attempts": item.attempts,
                 "files": files, "manifest": manifest, "production": describe_production(jobs or [], staff)}
    if staff:
        described.update(id=item.id, last_error=item.reason, lease_owner=item.lease_owner,
                         rendered_by=item.rendered_by,
                         lease_expires_at=_time(item.lease_expires_at), heartbeat_at=_time(item.heartbeat_at),
                         render_seconds=item.render_seconds, finished_at=_time(item.finished_at))
    return described


def _time(value: Any) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value is not None else None


def describe_order(order: Order, token: bool = False, staff: bool = False) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": order.id, "status": order_status([item.state for item in order.items]),
        "created_at": _time(order.created_at), "customer": {"name": order.customer_name, "email": order.customer_email},
    }
    if token:
        described["token"] = order.token
    described["links"] = {"self": url_for("api.show_order", order_id=order.id)}
    with services().database.session() as session:
        found = session.scalars(select(Job).where(Job.item_id.in_([item.id for item in order.items]))
                                .order_by(Job.id)).all()
    by_item: dict[int, list[Any]] = {}
    for job in found:
        by_item.setdefault(job.item_id, []).append(job)
    described["items"] = [describe_item(order, item, staff, by_item.get(item.id, [])) for item in order.items]
    return described


@bp.post("/orders")
def create_order() -> Any:
    key = request.headers.get("Idempotency-Key")
    body = json_body()
    config = services().config
    problems = check_idempotency_key(key)
    try:
        order_request = parse_order(body, int(config["MAX_ITEMS_PER_ORDER"]), int(config["MAX_QUANTITY"]))
    except ValidationError as error:
        problems = error.errors + problems
    if problems:
        return errors_response(problems)
    generation = services().generation
    keys = [generation.key(item.template, item.params) for item in order_request.items]
    try:
        order_id, created = place_order(services().database, order_request, keys, key, request_hash(body))
    except IdempotencyConflict:
        return errors_response([FieldError("Idempotency-Key", "this key was already used for a different order "
                                           "request; the first order stands. Send a new key for a new order.")])
    if created:
        generation.start(item_ids(services().database, order_id), services().queue.enqueue)
    order = _load_order(order_id)
    assert order is not None
    response = jsonify(describe_order(order, token=True))
    response.status_code = 201
    response.headers["Location"] = url_for("api.show_order", order_id=order_id)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _authorized_order(order_id: str) -> Order | Response:
    """The order if the request carries its token (header ``X-Order-Token`` or ``?token=``), else an error."""
    token = request.headers.get("X-Order-Token") or request.args.get("token")
    if not token:
        return json_errors(403, "this order can only be read with its token: send the X-Order-Token header or "
                                "?token= (the token came with the order)", "token")
    order = _load_order(order_id) if len(order_id) <= 64 else None
    if order is None or not hmac.compare_digest(order.token.encode(), token.encode("utf-8", "replace")):
        return json_errors(404, "no order with this id and token")
    return order


@bp.get("/orders/<order_id>")
def show_order(order_id: str) -> Any:
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    return describe_order(order)


@bp.get("/orders/<order_id>/items/<int:position>/files/<path:filename>")
def download(order_id: str, position: int, filename: str) -> Any:
    """One generated file; only files recorded for the item, and only inside the output folder."""
    order = _authorized_order(order_id)
    if isinstance(order, Response):
        return order
    artifact = next((a for item in order.items if item.position == position and item.state == "ready"
                     for a in item.artifacts if a.filename == filename), None)
    root = Path(services().config["OUTPUT_FOLDER"]).resolve()
    path = (root / artifact.path).resolve() if artifact is not None else None
    if artifact is None or path is None or not path.is_relative_to(root) or not path.is_file():
        return json_errors(404, "no such file for this order item")
    return send_file(path, mimetype=MIMETYPES.get(artifact.format, "application/octet-stream"), as_attachment=True,
                     download_name=artifact.filename, etag=artifact.sha256, max_age=0)


@bp.get("/openapi.json")
def openapi() -> Any:
    return openapi_document(services().config, current_app.extensions.get("openapi"))
