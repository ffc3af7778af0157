"""``parametric serve``, ``parametric worker`` and ``parametric users``: the web layer's sub-commands.

They reach the core's CLI through the ``parametric.commands`` entry point group (see
``pyproject.toml``); each ``add_*`` function takes the CLI's sub-parser collection.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger("web")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s")


# -- serve ----------------------------------------------------------------------------------


def add_serve(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the web app and REST API (waitress) with an embedded worker")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="embedded worker processes (default 1)")
    parser.add_argument("--no-worker", action="store_true", help="serve only; workers run elsewhere")
    parser.set_defaults(handler=cmd_serve)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    import waitress

    from . import create_app
    from .config import worker_environment

    _setup_logging()
    app = create_app()
    services = app.extensions["parametric"]
    services.database.upgrade()
    reaped = services.generation.reap(services.queue.enqueue)  # what a dead worker held while we were down
    try:  # what interrupted builds left in the render cache, and its size limit
        log.info("render cache at start: %s", services.generation.tidy())
    except OSError as error:
        log.error("render cache could not be tidied at start: %s", error)
    if services.config["CATALOG_WARM_UP"]:
        with app.app_context():  # the catalog's from-prices are worked out in the background from the start
            from .shop.views import catalog

            catalog().warm_up()
    log.info("database %s, queue %s; re-queued at start: %s", _safe_url(services.config["DATABASE_URL"]),
             "redis" if services.config.get("REDIS_URL") else services.config["HUEY_FILE"], reaped)
    worker = None
    if not args.no_worker:
        env = {**os.environ, **worker_environment(services.config)}
        worker = subprocess.Popen([sys.executable, "-m", "parametric.cli", "worker", "--workers", str(args.workers),
                                   "--parent-pid", str(os.getpid())], env=env)
        log.info("embedded worker started (pid %s, %s process%s)", worker.pid, args.workers,
                 "" if args.workers == 1 else "es")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"parametric: serving http://{args.host}:{args.port}/api/v1/templates "
          f"(OpenAPI: /api/v1/openapi.json)", flush=True)
    try:
        waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="parametric",
                       _quiet=True)
    except KeyboardInterrupt:
        pass
    finally:
        if worker is not None:
            _stop(worker)
    return 0


def _safe_url(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _stop(process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Ask a worker to finish its current render and stop (SIGINT); kill it if it does not."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- worker ---------------------------------------------------------------------------------


def add_worker(commands: Any) -> None:
    parser = commands.add_parser("worker", help="run render worker processes (sharing REDIS_URL and DATABASE_URL)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; one per core)")
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # serve's embedded worker
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=cmd_worker)


def _watch_parent(parent: int) -> None:
    """Stop gracefully when the process that started us (``serve``) is gone."""
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGINT)


def _warm_up(formats: list[str]) -> None:
    """Render one small configuration and its job sheet into a throwaway folder, so the kernel's and
    WeasyPrint's first-use costs (a second each: imports, fonts) are paid by each worker process as it
    starts, not by the first order or job it takes. Never in the parent before forking: the forked
    processes then hang in the kernel. Then the objects alive so far (modules, the registry, caches)
    are moved out of the garbage collector's sight (``gc.freeze``): a long-lived worker no longer
    walks them on every full collection, which cost 0.1 to 0.2 s now and then in the middle of a job."""
    import gc
    import tempfile
    from pathlib import Path

    import parametric
    from parametric.cache import Cache
    from parametric.jobsheet import write_job_sheet

    template = parametric.templates()[0]
    with tempfile.TemporaryDirectory(prefix="parametric-warm-up-") as folder:
        try:
            manifest = parametric.render(template.id, {}, formats=formats, cache=Cache(Path(folder) / "cache"),
                                         out_dir=Path(folder) / "out")
            write_job_sheet(manifest, Path(folder) / "sheet", order_ref="warm-up", item_ref="1",
                            job_url="http://127.0.0.1/warm-up")
        except parametric.ParametricError as error:
            log.warning("warm-up render of %s failed: %s", template.id, error)
        except Exception:  # a job sheet that cannot be made here is reported by the first real job
            log.exception("warm-up job sheet failed")
    gc.collect()
    gc.freeze()


def cmd_worker(args: argparse.Namespace) -> int:
    import parametric

    from .config import load_config
    from .db import Database
    from .tasks import create_consumer, create_queue

    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    _setup_logging(args.verbose)
    config = load_config()
    database = Database(config["DATABASE_URL"])
    database.upgrade()
    database.dispose()  # forked worker processes open their own connections
    import cadquery  # noqa: F401  load the kernel once; the forked worker processes share it

    parametric.templates()
    queue = create_queue(config)
    formats = list(config["ORDER_FORMATS"])
    queue.huey.on_startup("warm_up")(lambda: _warm_up(formats))  # runs in each worker process
    consumer = create_consumer(queue, config, workers=args.workers)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    log.info("worker: %s process%s, database %s, queue %s (%s), lease %ss, reaping every %ss", args.workers,
             "" if args.workers == 1 else "es", _safe_url(config["DATABASE_URL"]),
             "redis" if config.get("REDIS_URL") else config["HUEY_FILE"], config["HUEY_NAME"],
             config["LEASE_SECONDS"], config["REAP_INTERVAL_SECONDS"])
    consumer.run()
    return 0


# -- users ----------------------------------------------------------------------------------


def add_users(commands: Any) -> None:
    parser = commands.add_parser("users", help="staff accounts")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    adding = actions.add_parser("add", help="create a staff account")
    adding.add_argument("name")
    adding.add_argument("--password", help="the password (default: asked for, or read from standard input)")
    adding.set_defaults(handler=cmd_users_add)


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from .config import load_config
    from .db import Database
    from .staff.auth import UserError, add_user

    try:
        password = args.password if args.password is not None else _read_password()
        database = Database(load_config()["DATABASE_URL"])
        database.upgrade()
        add_user(database, args.name, password)
    except (UserError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"staff user {args.name!r} created")
    return 0
