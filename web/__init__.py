"""The web front end (Flask); it builds on the core library and is never imported by it.

``create_app`` follows the Flask tutorial's shape: configuration from a mapping of
defaults, then the environment, then ``test_config``; one blueprint per feature, all
registered here so the URL map is in one place; the database, the generation service and
the queue kept in ``app.extensions["parametric"]`` (:class:`web.services.Services`).

Importing this package is cheap (Flask, SQLAlchemy and huey load in ``create_app``): the
core's CLI imports ``web.commands`` for every command through its entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The WSGI application. It does not touch the database: ``serve``, ``worker`` and tests migrate it."""
    from flask import Flask

    from . import api, inputs, manufacturing, pages
    from .config import load_config
    from .db import Database
    from .errors import register_error_handlers
    from .limits import ClientLimit
    from .orders.generation import Generation
    from .services import Services
    from .shop import cart
    from .shop import views as shop
    from .staff import api as staff_api
    from .staff import batches, dashboard
    from .tasks import create_queue

    config = load_config(test_config)
    app = Flask(__name__, instance_path=config["INSTANCE_FOLDER"])
    app.config.update(config)
    app.json.sort_keys = False
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    database = Database(config["DATABASE_URL"])
    generation = Generation(config, database)
    app.extensions["parametric"] = Services(config, database, generation, create_queue(config, generation),
                                            ClientLimit(database, int(config["BUILD_LIMIT"]),
                                                        float(config["BUILD_LIMIT_SECONDS"])))

    app.register_blueprint(api.bp)  # /api/v1: templates, quotes, orders, the OpenAPI document
    app.register_blueprint(staff_api.bp)  # /api/v1/staff: orders and items
    app.register_blueprint(shop.bp)  # /: the shop's pages
    app.register_blueprint(cart.bp)  # /cart: several products, one order and one checkout
    app.register_blueprint(dashboard.bp)  # /staff: the staff dashboard
    app.register_blueprint(manufacturing.api_bp)  # /api/v1/staff: machines and jobs
    app.register_blueprint(manufacturing.bp)  # /staff/manufacturing: the queue page and machine forms
    inputs.init_app(app)  # every request's inputs cleaned before its view: control characters, non-JSON bodies
    app.register_blueprint(batches.api_bp)  # /api/v1/staff/batches: jobs on shared sheets and plates
    app.register_blueprint(batches.bp)  # /staff/batches: their pages, with the sheet and plate pictures
    pages.init_app(app)  # sessions, CSRF, security headers
    manufacturing.init_app(app)  # its API's CSRF exemption and OpenAPI paths
    batches.init_app(app)
    register_error_handlers(app)
    return app
