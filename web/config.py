"""Configuration: a mapping of defaults, then environment variables, then a test mapping.

The web app, the ``serve``/``worker`` commands and the queue tasks all read it through
:func:`load_config`, which needs no Flask app, so a worker process never builds one.

Environment: ``DATABASE_URL`` (default: SQLite in the instance folder; PostgreSQL with
``postgresql+psycopg://user@host/db``), ``REDIS_URL`` (default: a SQLite-backed queue in
the instance folder), ``PARAMETRIC_OUTPUT`` (generated files), ``PARAMETRIC_INSTANCE``
(the instance folder) and ``PARAMETRIC_<KEY>`` for any key below (JSON values allowed,
e.g. ``PARAMETRIC_LEASE_SECONDS=30`` or ``PARAMETRIC_SETUP_FEE='{"fdm": 5, "cnc": 25}'``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "PARAMETRIC_"

DEFAULTS: dict[str, Any] = {
    # Storage. None means "derive from the instance folder / the core's output folder".
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "HUEY_NAME": "parametric",
    "HUEY_FILE": None,              # the SQLite queue when REDIS_URL is not set (default <instance>/queue.db)
    "OUTPUT_FOLDER": None,          # orders' files: <output>/orders/<order id>/<item>/...
    "CACHE_FOLDER": None,           # the core's content-addressed cache (default <output>/cache)
    # Requests.
    "MAX_CONTENT_LENGTH": 256 * 1024,   # bytes; a larger body is refused with 413
    "MAX_ITEMS_PER_ORDER": 50,
    "MAX_QUANTITY": 1000,
    "ORDER_FORMATS": ["step", "stl", "3mf", "svg"],  # every order's files; the SVG drawing is also the job sheet's
    "EXPORT_TOLERANCE": 0.05,       # mesh chord tolerance in mm for STL/3MF
    "EXPORT_ANGULAR_TOLERANCE": 0.2,  # radians
    # Background generation.
    "RENDER_ATTEMPTS": 3,           # claims of one item before it is marked failed
    "RENDER_RETRY_DELAY": 10.0,     # seconds before a failed render is tried again
    "RENDER_TIMEOUT_SECONDS": 600.0,  # a build and export taking longer is stopped (a fault: retried, then failed)
    "FAULT_RETRY_SECONDS": 30.0,    # a full or read-only disk: Retry-After, and the wait before the queue retries
    "CACHE_MAX_BYTES": "20GB",      # the render cache is kept under this (bytes, or "500MB", "20GB"); 0: no limit
    "CACHE_MIN_AGE_SECONDS": 600.0,  # an entry used more recently than this is never evicted
    "CACHE_MIN_FREE_BYTES": 64 * 1024 * 1024,  # a build is refused (503) when the cache's disk has less free
    "LEASE_SECONDS": 120.0,         # a rendering item whose lease is older than this is re-queued
    "HEARTBEAT_SECONDS": 15.0,      # how often a rendering worker renews its lease
    "REAP_INTERVAL_SECONDS": 20,    # how often each worker's scheduler looks for expired leases
    "ENQUEUE_GRACE_SECONDS": 30.0,  # a queued item never handed to the queue is enqueued after this
    "REQUEUE_AFTER_SECONDS": 6 * 3600.0,  # a queued item waiting longer is handed to the queue again
    "WORKER_POLL_SECONDS": 0.05,    # first poll interval of an idle worker (SQLite queue)
    "WORKER_POLL_MAX_SECONDS": 1.0,  # poll interval an idle worker backs off to (SQLite queue)
    "WORKER_HEALTH_SECONDS": 5.0,   # how often a worker replaces a dead worker process
    "WORKER_HEARTBEAT_SECONDS": 3.0,  # how often each worker process writes its heartbeat row
    "WORKER_NICE": 0,               # workers this much nicer than the web process (10 where both share a machine)
    "WORKER_STALE_SECONDS": 30.0,   # a heartbeat older than this: the worker is hung or dead, its task goes on
    "DISPATCH_INTERVAL_SECONDS": None,  # how often the manufacturing dispatcher runs (default: REAP_INTERVAL_SECONDS)
    "WORKER_RECORD_SECONDS": 86400.0,  # rows of stopped or lost workers are kept this long for staff
    # Previews, quotes and catalog pictures: built by the workers, never in a request thread.
    "BUILD_LIMIT": 20,              # new builds one client may ask for per BUILD_LIMIT_SECONDS (then 429)
    "BUILD_LIMIT_SECONDS": 60.0,
    "BUILD_POLL_SECONDS": 2,        # Retry-After of a 202 "preparing" answer; the page refreshes this often
    "BUILD_STALE_SECONDS": 600.0,   # a build queued this long without a worker starting it is enqueued again
    "BUILD_RECORD_DAYS": 30.0,      # finished build records are forgotten after this
    "CATALOG_WARM_UP": True,        # serve asks for every template's from-price as it starts (off: on first visit)
    # Quotes: price = material + machine time + setup; lead time = queue + production.
    "CURRENCY": "EUR",
    "SETUP_FEE": {"fdm": 5.0, "cnc": 25.0},              # per process: per line for a quote, once per order in a cart
    "MACHINE_RATE_PER_HOUR": {"fdm": 3.0, "cnc": 45.0},
    "MACHINE_RATE_MM3_PER_S": {"fdm": 10.0, "cnc": 800.0},  # deposition (fdm) or material cut (cnc)
    "PRODUCTION_DAYS": {"fdm": 2, "cnc": 5},
    "DEFAULT_RENDER_SECONDS": 5.0,  # used for lead times until renders have been timed
    "QUEUE_WORKERS": 1,             # render workers assumed when estimating the queue's wait
    "QUOTE_SLICER_WAIT_SECONDS": 20.0,  # a quote waits this long for PrusaSlicer, then prices by volume
    "SHEET_UTILISATION": 0.75,      # share of a sheet nesting uses: a sheet part is priced by footprint / this
    # Manufacturing.
    "PUBLIC_URL": "http://127.0.0.1:8000",  # where staff reach the app: job sheets' QR codes link there
    # Abuse limits (counted in the database, per client address: web.limits).
    "LOGIN_FAILURES_PER_ACCOUNT": 5,    # wrong staff passwords for one account within the window, then locked
    "LOGIN_FAILURES_PER_CLIENT": 20,    # wrong staff passwords from one client address within the window
    "LOGIN_WINDOW_SECONDS": 900,
    "LOGIN_LOCKOUT_SECONDS": 900,       # how long a locked-out account or client waits (429, Retry-After)
    "STAFF_CREDENTIAL_CACHE_SECONDS": 60,  # a staff API password checked once is trusted this long (0: never)
    "ORDERS_PER_CLIENT": 30,            # new orders from one client address per window (replays not counted)
    "ORDERS_WINDOW_SECONDS": 3600,
    "MAX_UNITS_PER_ORDER": 1000,        # pieces in all (each item's quantity, added up)
    "IDEMPOTENCY_HOURS": 24,            # an Idempotency-Key is remembered this long, for the client that sent it
    # Sessions and proxies.
    "PROXY_COUNT": 0,                   # proxies in front of the app trusted for X-Forwarded-For/-Proto/-Host
    "PREFERRED_URL_SCHEME": "http",     # "https" behind TLS: session cookies are then Secure
    "SESSION_COOKIE_SECURE": None,      # None: Secure when the scheme is https (PREFERRED_URL_SCHEME or the proxy)
    "SESSION_COOKIE_SAMESITE": "Lax",
    "ALLOWED_ORIGINS": [],              # other origins (https://shop.example) whose pages may post to the staff API
    # Batches (web.batches): ready jobs of one machine and material on shared sheets and plates.
    "BATCHING": False,              # gather ready jobs into batches; off: every job is sent on its own
    "BATCH_CLOSE_UTILISATION": 0.75,  # a batch closes when its sheets' (plates') parts cover this share of them
    "BATCH_SHIP_MARGIN_HOURS": 24.0,  # ... or when its oldest job's ship date is this near after the batch's work
    "BATCH_NEST_SECONDS": 10.0,     # the nesting engines' budget per layout of a router's batch
    "BATCH_PLATE_SECONDS": 3.0,     # the true-shape packer's budget per plate
    "BATCH_CLEARANCE_MM": 2.0,      # gap between two parts on a sheet beyond the widest end mill
    "BATCH_SHEET_MARGIN_MM": 10.0,  # border kept free at a sheet's edges
    "BATCH_PART_IN_PART": True,     # small parts may sit in larger parts' cut-outs
    "BATCH_PLATE_SPACING_MM": None,  # gap between objects on a plate (default: the slicer profile's spacing)
    "BATCH_INTERVAL_SECONDS": None,  # how often a worker gathers, lays out, closes and follows batches (default:
                                     # DISPATCH_INTERVAL_SECONDS)
}


def instance_folder() -> Path:
    """The instance folder: ``$PARAMETRIC_INSTANCE``, else where Flask would put it for ``web``."""
    configured = os.environ.get(ENV_PREFIX + "INSTANCE")
    if configured:
        return Path(configured).resolve()
    from flask.sansio.scaffold import find_package

    prefix, package_path = find_package("web")
    if prefix is None:
        return Path(package_path) / "instance"
    return Path(prefix) / "var" / "web-instance"


def _from_environment(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_config(overrides: Mapping[str, Any] | None = None, instance_path: Path | None = None) -> dict[str, Any]:
    """Defaults, then the environment, then ``overrides``; storage locations resolved to absolute values."""
    config = copy.deepcopy(DEFAULTS)
    for key in DEFAULTS:
        if ENV_PREFIX + key in os.environ:
            config[key] = _from_environment(os.environ[ENV_PREFIX + key])
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            config[key] = os.environ[key]
    config.update(overrides or {})
    instance = Path(config.get("INSTANCE_FOLDER") or instance_path or instance_folder()).resolve()
    config["INSTANCE_FOLDER"] = str(instance)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'parametric.db'}"
    if not config["OUTPUT_FOLDER"]:
        from parametric.cache import output_root

        config["OUTPUT_FOLDER"] = str(output_root())
    config["OUTPUT_FOLDER"] = str(Path(config["OUTPUT_FOLDER"]).resolve())
    if not config["CACHE_FOLDER"]:
        config["CACHE_FOLDER"] = str(Path(config["OUTPUT_FOLDER"]) / "cache")
    config["HUEY_FILE"] = str(Path(config["HUEY_FILE"] or instance / "queue.db").resolve())
    return config


def worker_environment(config: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables that give a child process (the embedded worker) the same configuration."""
    env = {ENV_PREFIX + key: value if isinstance(value, str) else json.dumps(value)
           for key, value in config.items() if key in DEFAULTS and value is not None}
    env["DATABASE_URL"] = config["DATABASE_URL"]
    if config.get("REDIS_URL"):
        env["REDIS_URL"] = config["REDIS_URL"]
    env[ENV_PREFIX + "INSTANCE"] = config["INSTANCE_FOLDER"]
    env[ENV_PREFIX + "OUTPUT"] = config["OUTPUT_FOLDER"]
    return env
