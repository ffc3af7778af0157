"""The queue under load and faults, on real servers: ``parametric serve`` and ``parametric worker`` processes.

- A burst of 50 new-configuration previews: answered at once (202, built by the workers), while cached pages
  and staff pages (logged in, and the staff API with basic auth) keep answering under 200 ms (p99), and the
  previews get built.
- The reaper runs while the queue holds a long backlog (its own process, not a queued task).
- A SIGSTOPped worker's item is given to another worker, and staff see the stopped worker and what it held.
- Priorities: both storages (SQLite, Redis) hand out the highest priority first.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from web.db import Database
from web.models import OrderItem, WorkerRow, utcnow
from web.priorities import PRIORITY

from .live import Stack, postgres_database, service_unavailable

pytestmark = pytest.mark.integration

REDIS = os.environ.get("PARAMETRIC_TEST_REDIS", "redis://127.0.0.1:6379/0")
STAFF = ("queue-staff", "a long enough password")


def _redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        service_unavailable("Redis", error)
    return REDIS


def _staff_headers(stack: Stack) -> dict[str, str]:
    import base64
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password", STAFF[1]],
                   env=stack.env, check=True, capture_output=True)
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def _staff_session(stack: Stack) -> dict[str, str]:
    """The Cookie header of a staff session on the dashboard (logged in once through the form, CSRF token included)."""
    import re
    import urllib.request

    with urllib.request.urlopen(stack.base + "/staff/login") as response:
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
    data = urllib.parse.urlencode({"csrf_token": token, "name": STAFF[0], "password": STAFF[1]}).encode()

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(stack.base + "/staff/login", data=data, headers={"Cookie": cookie})
    try:
        urllib.request.build_opener(Keep).open(request)
    except urllib.error.HTTPError as error:
        assert error.code == 303, error.code
        return {"Cookie": error.headers["Set-Cookie"].split(";", 1)[0]}
    raise AssertionError("the login did not redirect")


def _sqlite_stack(folder, **env: str) -> Stack:
    return Stack(folder, {
        "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
        "PARAMETRIC_CACHE_FOLDER": str(folder / "cache"), "PARAMETRIC_HUEY_NAME": f"q-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": f"sqlite:///{folder / 'instance' / 'parametric.db'}", "REDIS_URL": "",
        "PARAMETRIC_REAP_INTERVAL_SECONDS": "1", "PARAMETRIC_WORKER_HEALTH_SECONDS": "1",
        "PARAMETRIC_WORKER_HEARTBEAT_SECONDS": "0.5", **env})


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# -- a burst of new previews -------------------------------------------------------------------------


def test_a_burst_of_50_new_previews_leaves_cached_and_staff_pages_answering(tmp_path):
    # serve and worker on one machine, as deployed there: the workers run nicer than the web process
    stack = _sqlite_stack(tmp_path, PARAMETRIC_BUILD_LIMIT="200", PARAMETRIC_WORKER_NICE="10",
                          PARAMETRIC_CATALOG_WARM_UP="false")  # the shop front's start-up quotes are not the burst
    try:
        staff = _staff_headers(stack)
        stack.start_server("--no-worker")
        stack.start_worker("worker", workers=1)
        stack.wait_for_log("worker", "Huey consumer started")
        cached_preview = "/configure/leg_cap/preview?params.sleeve_depth=15&quantity=1&material=pla"
        deadline = time.monotonic() + 120
        while stack.get(cached_preview)[0] != 200:  # one configuration built before the burst
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.2)
        cached = ["/api/v1/templates", cached_preview, "/configure/leg_cap", "/api/v1/templates/leg_cap"]
        session = _staff_session(stack)
        assert stack.get("/api/v1/staff/queue", headers=staff)[0] == 200  # its password checked once, remembered
        staff_pages = [("/staff/queue", session), ("/staff/", session),  # the dashboard, logged in
                       ("/api/v1/staff/queue", staff)]  # basic auth: the password is sent with every request
        timings: dict[str, list[float]] = {"cached": [], "staff": [], "staff_api": [], "burst": []}
        errors: list[str] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                for path in cached:
                    started = time.perf_counter()
                    status, body, _ = stack.get(path)
                    timings["cached"].append(time.perf_counter() - started)
                    if status != 200:
                        errors.append(f"{path}: {status}")
                for path, headers in staff_pages:
                    started = time.perf_counter()
                    status, body, _ = stack.get(path, headers=headers)
                    timings["staff_api" if path.startswith("/api") else "staff"].append(time.perf_counter() - started)
                    if status != 200:
                        errors.append(f"{path}: {status}")

        def new_preview(index: int) -> tuple[int, str]:
            path = f"/configure/leg_cap/preview?params.sleeve_depth={20 + index * 0.5}&quantity=1&material=pla"
            started = time.perf_counter()
            status, _, headers = stack.get(path)
            timings["burst"].append(time.perf_counter() - started)
            return status, headers.get("Retry-After", "")

        probes = [threading.Thread(target=probe) for _ in range(2)]
        for thread in probes:
            thread.start()
        time.sleep(4)  # the same pages before the burst: what this machine gives them now
        quiet = {kind: list(values) for kind, values in timings.items()}
        for values in timings.values():
            values.clear()
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(new_preview, range(50)))
        status, report, _ = stack.get("/api/v1/staff/queue", headers=staff)  # staff see them waiting (a quiet
        assert status == 200 and report["builds"].get("preview", 0) >= 1, report  # machine builds them in seconds)
        time.sleep(8)  # the workers are busy with the burst meanwhile
        stop.set()
        for thread in probes:
            thread.join()
        figures = {kind: (statistics.median(values) * 1000, _percentile(values, 0.95) * 1000,
                          _percentile(values, 0.99) * 1000, max(values) * 1000, len(values))
                   for kind, values in timings.items()}
        print("\nburst of 50 new previews (shared 2-core machine): " + "; ".join(
            f"{kind}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {top:.0f} ms over {count} requests"
            for kind, (p50, p95, p99, top, count) in figures.items()))
        assert not errors, errors
        assert [status for status, _ in answers] == [202] * 50
        assert all(retry.isdigit() for _, retry in answers)
        assert figures["burst"][2] < 5000, figures  # queued, not built: no request waits for a build
        # The bound (before: a 4 ms GET took 77.8 s in such a burst): cached pages, the staff dashboard
        # and the staff API answer under 200 ms (p99) while the workers build the 50 previews. That bound is
        # about the burst, so it is judged on a machine that gives these pages their time when no burst runs
        # (p99 under 100 ms before it). On a machine other work has already slowed (the shared 2-core machine
        # with other suites running), the burst may not add more than the pages already wait: p99 at most
        # twice the p99 before it. Both figures are printed.
        load = os.getloadavg()[0]
        for kind in ("cached", "staff", "staff_api"):
            before = _percentile(quiet[kind], 0.99) * 1000
            print(f"{kind}: p99 {before:.0f} ms before the burst, {figures[kind][2]:.0f} ms during it "
                  f"(load average {load:.1f})")
            bound = 200.0 if before < 100 else 2 * before
            assert figures[kind][2] < bound, (kind, before, figures)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # and the workers build them all
            if stack.get("/api/v1/staff/queue", headers=staff)[1]["builds"].get("preview", 0) == 0:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"the burst was not built in 300 s:\n{stack.logs()}")
        status, _, _ = stack.get("/configure/leg_cap/preview?params.sleeve_depth=44.5&quantity=1&material=pla")
        assert status == 200
    finally:
        stack.stop()


# -- the reaper behind a backlog ------------------------------------------------------------------------


def test_the_reaper_runs_while_the_queue_holds_a_long_backlog(tmp_path):
    stack = _sqlite_stack(tmp_path, PARAMETRIC_LEASE_SECONDS="30", PARAMETRIC_WORKER_STALE_SECONDS="5",
                          PARAMETRIC_ORDERS_PER_CLIENT="1000")
    database = Database(stack.env["DATABASE_URL"])
    try:
        stack.start_server("--no-worker")
        widths = [300 + 10 * index for index in range(40)]
        orders = []
        for width in widths:  # 40 new configurations: a backlog of renders for one worker
            status, order, _ = stack.request("POST", "/api/v1/orders", {
                "customer": {"name": "Backlog", "email": "b@example.com"},
                "items": [{"template": "wall_shelf", "params": {"width": width, "depth": 120}, "material": "pla"}]})
            assert status == 201, order
            orders.append(order)
        with database.session() as session:
            ids = session.scalars(select(OrderItem.id).order_by(OrderItem.id)).all()
        dead, ghost_task = ids[-1], ids[-2]
        now = utcnow()
        with database.transaction() as session:  # a worker that died holding an item, and a silent one
            item = session.get(OrderItem, dead)
            item.state, item.lease_owner, item.attempts = "rendering", "gone-host:1:dead", 1
            item.lease_expires_at = now - timedelta(seconds=1)
            session.add(WorkerRow(name="gone-host:2", host="gone-host", pid=2, role="worker", state="busy",
                                  task="render_item", task_args=[ghost_task], task_priority=PRIORITY["render"],
                                  tasks_done=0, started_at=now - timedelta(minutes=5),
                                  heartbeat_at=now - timedelta(minutes=1)))
        stack.start_worker("worker", workers=1)
        stack.wait_for_log("worker", "Huey consumer started")
        started = time.monotonic()
        deadline = started + 60
        reaped = lost = None
        while time.monotonic() < deadline and (reaped is None or lost is None):
            with database.session() as session:
                item = session.get(OrderItem, dead)
                ghost = session.get(WorkerRow, "gone-host:2")
                waiting = session.scalar(select(OrderItem.id).where(OrderItem.state == "queued").limit(1))
            if reaped is None and item.state != "rendering":
                reaped = (time.monotonic() - started, item.last_error or "")  # staff words; reason is the customer's
            if lost is None and ghost.state == "lost" and "given to another worker" in (ghost.note or ""):
                lost = (time.monotonic() - started, ghost.note)
            time.sleep(0.2)
        with database.session() as session:
            still_queued = len(session.scalars(select(OrderItem.id).where(OrderItem.state == "queued")).all())
        print(f"\nreaper behind a backlog of 40 renders: expired lease handled after {reaped and reaped[0]:.1f} s, "
              f"silent worker after {lost and lost[0]:.1f} s; {still_queued} items still waiting")
        assert reaped is not None and "stopped renewing its lease" in reaped[1], stack.logs()
        assert lost is not None and f"item {ghost_task}" in lost[1], stack.logs()
        assert waiting is not None and still_queued >= 10  # the backlog was still there
    finally:
        stack.stop()
        database.dispose()


# -- a stopped worker (PostgreSQL + Redis, two worker machines) -------------------------------------------


@pytest.fixture
def pg_redis_stack(tmp_path) -> Iterator[Stack]:
    import redis

    redis_url = _redis_url()
    queue_name = f"parametric-test-{uuid.uuid4().hex[:12]}"
    with postgres_database() as postgres_url:
        stack = Stack(tmp_path, {
            "DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "PARAMETRIC_HUEY_NAME": queue_name,
            "PARAMETRIC_INSTANCE": str(tmp_path / "instance"), "PARAMETRIC_OUTPUT": str(tmp_path / "output"),
            "PARAMETRIC_CACHE_FOLDER": str(tmp_path / "cache"),
            "PARAMETRIC_LEASE_SECONDS": "600",  # the lease would take ten minutes: the heartbeat must do it
            "PARAMETRIC_HEARTBEAT_SECONDS": "0.5", "PARAMETRIC_WORKER_HEARTBEAT_SECONDS": "0.5",
            "PARAMETRIC_WORKER_STALE_SECONDS": "4", "PARAMETRIC_REAP_INTERVAL_SECONDS": "1",
            "PARAMETRIC_WORKER_HEALTH_SECONDS": "1",
        })
        try:
            yield stack
        finally:
            stack.stop()
            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(match=f"*{queue_name}*"):
                client.delete(key)


def test_a_stopped_worker_is_noticed_its_item_goes_to_another_worker_and_staff_see_it(pg_redis_stack):
    stack = pg_redis_stack
    staff = _staff_headers(stack)
    stack.start_server("--no-worker")
    for name in ("worker-a", "worker-b"):
        stack.start_worker(name)
    for name in ("worker-a", "worker-b"):
        stack.wait_for_log(name, "Huey consumer started")
    database = Database(stack.env["DATABASE_URL"])
    stopped = None
    try:
        status, order, _ = stack.request("POST", "/api/v1/orders", {
            "customer": {"name": "Stopped", "email": "s@example.com"},
            "items": [{"template": "wall_shelf", "params": {"width": 1440, "hole_pitch": 40}, "material": "pla"}]})
        assert status == 201, order
        with database.session() as session:
            item_id = session.scalar(select(OrderItem.id).where(OrderItem.order_id == order["id"]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with database.session() as session:
                item = session.get(OrderItem, item_id)
            if item.state == "rendering" and item.lease_owner:
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"never rendering:\n{stack.logs()}")
        stopped = int(item.lease_owner.split(":")[1])
        os.kill(stopped, signal.SIGSTOP)  # hung: alive, holding its lease, silent
        started = time.monotonic()
        deadline = started + 240  # a render on a loaded shared machine; the lease alone would take 600 s
        while time.monotonic() < deadline:
            with database.session() as session:
                item = session.get(OrderItem, item_id)
            if item.state == "ready":
                break
            assert item.state != "failed", item.reason
            time.sleep(0.25)
        else:
            raise AssertionError(f"the stopped worker's item was never rendered elsewhere:\n{stack.logs()}")
        print(f"\nSIGSTOPped worker: its item was ready {time.monotonic() - started:.1f} s later (lease: 600 s)")
        assert int(item.rendered_by.split(":")[1]) != stopped and item.attempts == 2
        status, report, _ = stack.get("/api/v1/staff/queue", headers=staff)
        assert status == 200
        [row] = [w for w in report["workers"] if w["name"].endswith(f":{stopped}")]
        assert row["state"] == "lost" and f"item {item_id} given to another worker" in row["note"], row
        assert "no heartbeat for" in row["note"]
        replaced_by = time.monotonic() + 60  # the consumer kills the stopped process; its replacement starts beating
        while True:
            live = [w for w in report["workers"] if w["role"] == "worker" and w["state"] in ("idle", "busy")]
            if len(live) >= 2 or time.monotonic() > replaced_by:
                break
            time.sleep(1)
            status, report, _ = stack.get("/api/v1/staff/queue", headers=staff)
        assert len(live) >= 2, (report["workers"], stack.logs())  # worker-b and the stopped one's replacement
        assert {w["role"] for w in report["workers"]} >= {"worker", "reaper", "dispatcher"}
    finally:
        if stopped is not None:
            try:
                os.kill(stopped, signal.SIGCONT)
            except ProcessLookupError:
                pass  # its consumer killed it and started a fresh one
        database.dispose()


def test_staff_see_a_stuck_item_of_a_silent_worker_on_the_queue_page(tmp_path):
    """The staff page, not only the API: a worker with an old heartbeat and the item it holds."""
    from web import create_app

    from .conftest import STAFF as PAGE_STAFF
    from .conftest import test_config

    app = create_app(test_config(tmp_path, tmp_path / "cache", WTF_CSRF_ENABLED=False))
    database = app.extensions["parametric"].database
    database.upgrade()
    from web.staff.auth import add_user

    add_user(database, *PAGE_STAFF)
    client = app.test_client()
    status = client.post("/api/v1/orders", json={"customer": {"name": "A", "email": "a@example.com"},
                                                 "items": [{"template": "leg_cap", "material": "pla"}]}).status_code
    assert status == 201
    now = utcnow()
    with database.transaction() as session:
        item = session.scalars(select(OrderItem)).first()
        item.state, item.lease_owner = "rendering", "silent-host:7:abc"
        item.lease_expires_at = now + timedelta(minutes=5)
        session.add(WorkerRow(name="silent-host:7", host="silent-host", pid=7, role="worker", state="busy",
                              task="render_item", task_args=[item.id], tasks_done=3, started_at=now,
                              heartbeat_at=now - timedelta(minutes=2)))
    client.post("/staff/login", data={"name": PAGE_STAFF[0], "password": PAGE_STAFF[1]})
    page = client.get("/staff/queue")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "silent-host:7" in text and "stale" in text and "its worker silent-host:7 stopped answering" in text
    assert 'http-equiv="refresh"' in text


# -- priorities on both storages -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_both_storages_hand_out_the_highest_priority_first_and_count_what_waits(tmp_path, backend):
    from web.config import load_config
    from web.tasks import create_queue

    overrides = {"INSTANCE_FOLDER": str(tmp_path), "OUTPUT_FOLDER": str(tmp_path / "out"),
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "HUEY_NAME": f"prio-{uuid.uuid4().hex[:8]}",
                 "REDIS_URL": _redis_url() if backend == "redis" else None}
    queue = create_queue(load_config(overrides))
    try:
        for job_id in range(30):
            queue.prepare_job(job_id)
        for item_id in range(5):
            queue.render_item(item_id)
        queue.build_preview("p" * 64)
        queue.build_quote("q" * 64)
        assert queue.waiting() == {PRIORITY["manufacturing"]: 30, PRIORITY["render"]: 5, PRIORITY["preview"]: 1,
                                   PRIORITY["quote"]: 1} | ({p: 0 for p in PRIORITY.values()
                                                             if p not in (10, 100, 250, 300)}
                                                            if backend == "redis" else {})
        assert queue.ahead_of(PRIORITY["render"]) == {"preview": 1, "quote": 1, "render": 5}
        order = [queue.huey.dequeue().name for _ in range(8)]
        assert order == ["build_preview", "build_quote"] + ["render_item"] * 5 + ["prepare_job"]
    finally:
        queue.huey.flush()
