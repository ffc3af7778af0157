"""The API's error answers, one shape for all: ``{"errors": [{"field": ..., "message": ...}]}``; under
/api every error is JSON, a bug included."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response

    from parametric import FieldError

log = logging.getLogger(__name__)


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

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            return InternalServerError()
        return json_errors(500, "internal error; it has been logged")
