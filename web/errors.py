"""The API's error answers, one shape for all: ``{"errors": [{"field": ..., "message": ...}]}``; under
/api every error is JSON, a bug included."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from parametric.errors import CUSTOMER_FAULT_MESSAGE, InfrastructureError, infrastructure_fault

if TYPE_CHECKING:
    from flask import Flask, Response

    from parametric import FieldError

log = logging.getLogger(__name__)

_DATABASE_FAULTS = {"database or disk is full": "disk_full", "attempt to write a readonly database": "read_only",
                    "disk i/o error": "io_error", "could not extend file": "disk_full",
                    "no space left on device": "disk_full"}


def server_fault(error: BaseException) -> InfrastructureError | None:
    """The fault of ours ``error`` is: the core's rule (:func:`parametric.errors.infrastructure_fault`: a full,
    read-only or unwritable disk, a missing tool, a timeout), or a database that cannot write (SQLite's and
    PostgreSQL's words for a full or read-only disk); ``None`` for anything else."""
    fault = infrastructure_fault(error)
    if fault is not None:
        return fault
    text = str(getattr(error, "orig", None) or error).lower()
    for words, kind in _DATABASE_FAULTS.items():
        if words in text:
            return InfrastructureError(kind, f"the database cannot write: {error}")
    return None


def fault_response(fault: InfrastructureError, retry_after_s: float | None = None) -> Response:
    """503 with Retry-After for a fault of ours: JSON under /api and to a client asking for JSON (the live
    preview), else the error page; in plain words only (the detail, with any server path, goes to the log)."""
    from flask import current_app, render_template, request

    log.error("%s %s answered 503: %s: %s", request.method, request.path, fault.kind, fault.reason,
              exc_info=fault.__cause__ or fault)
    if retry_after_s is None:
        retry_after_s = float(current_app.config.get("FAULT_RETRY_SECONDS", fault.retry_after_s))
    message = CUSTOMER_FAULT_MESSAGE[0].upper() + CUSTOMER_FAULT_MESSAGE[1:] + "."
    wants_json = request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json")
    if wants_json:
        response = json_errors(503, message)
    else:
        from flask import make_response

        response = make_response(render_template("error.html", title="Please try again shortly",
                                                 message=message), 503)
    response.headers["Retry-After"] = str(max(1, round(retry_after_s)))
    response.headers["Cache-Control"] = "no-store"
    return response


def json_errors(status: int, message: str, field: str = "") -> Response:
    """One error in the API's shape."""
    from flask import Response

    return Response(json.dumps({"errors": [{"field": field, "message": message}]}), status=status,
                    mimetype="application/json")


def errors_response(problems: list[FieldError], status: int = 422) -> Response:
    """The core's field errors (a :class:`~parametric.ValidationError`'s) in the API's shape."""
    from flask import jsonify

    response = jsonify(errors=[problem.to_dict() for problem in problems])
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Under /api every error is JSON: 404, 405, 413 and, should a bug slip through, 500."""
    from flask import request
    from werkzeug.exceptions import HTTPException, InternalServerError

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            return error
        message = error.description or error.name
        if error.code == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        response = json_errors(error.code or 500, message)
        for name, value in error.get_headers():
            if name.lower() in ("allow", "www-authenticate"):
                response.headers[name] = value
        return response

    @app.errorhandler(InfrastructureError)
    def infrastructure(error: InfrastructureError) -> Any:
        return fault_response(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        fault = server_fault(error)
        if fault is not None:
            return fault_response(fault)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            return InternalServerError()
        return json_errors(500, "internal error; it has been logged")
