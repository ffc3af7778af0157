"""Error answers. Under /api every error is JSON in one shape, ``{"errors": [{"field": ..., "message": ...}]}``,
a bug included; elsewhere a page in the shop's look that says what happened in plain words and how to go on
(``error.html``): an unknown product or a mistyped tracking link is a 404 page with a way back, a bug a 500
page that says it was logged."""

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


PAGE_TITLES = {400: "Something was missing from the form", 401: "Please sign in", 403: "This page is not open to you",
               404: "We could not find that page", 405: "That did not work from here",
               413: "That was too much to send at once", 500: "Something went wrong on our side"}
"""The heading of each error page, for people (not the status's technical name)."""
PAGE_MESSAGES = {
    403: "You may need to sign in first.",
    404: "The address may be mistyped, or the page has moved. If you followed the link from your order "
         "confirmation, please copy the whole link, including everything after the question mark.",
    405: "Please go back and use the page's own buttons.",
    413: "Please send less at once.",
    500: "We have been told about it and will look into it. Please try again in a moment; your order, if you "
         "placed one, is safe.",
}


def error_page(status: int, description: str | None = None) -> Response:
    """The page a person sees for an error: a heading, what happened (``description`` when the view said it in
    words), and the way back to the catalog."""
    from flask import Response, render_template

    title = PAGE_TITLES.get(status, "Something went wrong")
    message = description or PAGE_MESSAGES.get(status, "Please go back and try again.")
    html = render_template("error.html", title=title, message=message, status=status)
    return Response(html, status=status, mimetype="text/html")


def _own_words(error: Any) -> str | None:
    """A view's own description of an error (``abort(404, description=...)``), not werkzeug's default text."""
    description = getattr(error, "description", None)
    default = getattr(type(error), "description", None)
    return description if description and description != default else None


def register_error_handlers(app: Flask) -> None:
    """Under /api every error is JSON: 404, 405, 413 and, should a bug slip through, 500."""
    from flask import request
    from werkzeug.exceptions import HTTPException, InternalServerError

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if not request.path.startswith("/api/"):
            if error.code is None or error.code < 400 or request.path.startswith("/static/"):
                return error
            page = error_page(error.code, _own_words(error) or PAGE_MESSAGES.get(error.code))
            for name, value in error.get_headers():
                if name.lower() in ("allow", "www-authenticate"):
                    page.headers[name] = value
            return page
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
            return error_page(InternalServerError.code)
        return json_errors(500, "internal error; it has been logged")
