"""The web front end (Flask); it builds on the core library and is never imported by it.

``create_app`` follows the Flask tutorial's shape: configuration from a mapping of
defaults, then the environment, then ``test_config``; one blueprint per feature; the
database, the generation service and the queue kept in ``app.extensions["parametric"]``.

Importing this package is cheap (Flask, SQLAlchemy and huey load in ``create_app``): the
core's CLI imports ``web.commands`` for every command through its entry points.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response

    from .db import Database
    from .generation import Generation
    from .tasks import Queue

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the views use: configuration, database, background generation and the queue."""

    config: dict[str, Any]
    database: Database
    generation: Generation
    queue: Queue


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The WSGI application. It does not touch the database: ``serve``, ``worker`` and tests migrate it."""
    from flask import Flask

    from .config import load_config
    from .db import Database
    from .generation import Generation
    from .tasks import create_queue

    config = load_config(test_config)
    app = Flask(__name__, instance_path=config["INSTANCE_FOLDER"])
    app.config.update(config)
    app.json.sort_keys = False
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    database = Database(config["DATABASE_URL"])
    generation = Generation(config, database)
    app.extensions["parametric"] = Services(config, database, generation, create_queue(config, generation))

    from . import api, pages, staff

    app.register_blueprint(api.bp)
    app.register_blueprint(staff.bp)
    pages.init_app(app)  # the shop's and the staff dashboard's pages
    from . import manufacturing

    manufacturing.init_app(app)  # machines and jobs: staff API and the queue page
    _register_error_handlers(app)
    return app


def json_errors(status: int, message: str, field: str = "") -> Response:
    """An error in the API's shape: ``{"errors": [{"field": ..., "message": ...}]}``."""
    from flask import Response

    return Response(json.dumps({"errors": [{"field": field, "message": message}]}), status=status,
                    mimetype="application/json")


def _register_error_handlers(app: Flask) -> None:
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
