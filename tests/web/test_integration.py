"""The whole flow on real servers: PostgreSQL, Redis, ``parametric serve`` and two ``parametric worker`` processes.

Twenty orders posted at once (plus concurrent retries of one Idempotency-Key) all become
ready, once each; a worker process SIGKILLed mid-render, and then a whole worker machine
(consumer and its processes) SIGKILLed mid-render, lose nothing. Leases are a few seconds
here so the reaper acts quickly.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from web.db import Database
from web.models import Artifact, IdempotencyKey, Order, OrderItem

from .live import Stack, postgres_database, service_unavailable

pytestmark = pytest.mark.integration

REDIS = os.environ.get("PARAMETRIC_TEST_REDIS", "redis://127.0.0.1:6379/0")
ORDER_FORMATS = {"step", "stl", "3mf", "svg"}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        service_unavailable("Redis", error)
    return REDIS


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url) -> Iterator[Stack]:
    """serve (no embedded worker) + two worker processes, on PostgreSQL and a Redis queue named for this run."""
    import redis

    folder = tmp_path_factory.mktemp("stack")
    queue_name = f"parametric-test-{uuid.uuid4().hex[:12]}"
    live = Stack(folder, {
        "DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "PARAMETRIC_HUEY_NAME": queue_name,
        "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
        "PARAMETRIC_CACHE_FOLDER": str(folder / "cache"),  # a cold cache: every configuration is really built
        "PARAMETRIC_LEASE_SECONDS": "4", "PARAMETRIC_HEARTBEAT_SECONDS": "0.5",
        "PARAMETRIC_REAP_INTERVAL_SECONDS": "1", "PARAMETRIC_WORKER_HEALTH_SECONDS": "1",
        "PARAMETRIC_RENDER_RETRY_DELAY": "0.5",
    })
    try:
        live.start_server("--no-worker")
        for name in ("worker-a", "worker-b"):
            live.start_worker(name)
        for name in ("worker-a", "worker-b"):
            live.wait_for_log(name, "Huey consumer started")
        yield live
    finally:
        live.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{queue_name}*"):
            client.delete(key)


@pytest.fixture(scope="module")
def database(postgres_url) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def shelf(width: float) -> dict:
    return {"customer": {"name": "Integration Test", "email": "it@example.com"},
            "items": [{"template": "wall_shelf", "params": {"width": width}, "material": "pla"}]}


def wait_until_ready(stack: Stack, orders: list[dict], timeout: float = 150) -> list[dict]:
    deadline = time.monotonic() + timeout
    pending = {order["id"]: order for order in orders}
    done: dict[str, dict] = {}
    while pending and time.monotonic() < deadline:
        for order_id, order in list(pending.items()):
            status, shown, _ = stack.get(f"/api/v1/orders/{order_id}", headers={"X-Order-Token": order["token"]})
            assert status == 200, shown
            assert shown["status"] != "failed", shown
            if shown["status"] == "ready":
                done[order_id] = shown
                del pending[order_id]
        time.sleep(0.25)
    assert not pending, f"{len(pending)} orders never became ready:\n{stack.logs()}"
    return [done[order["id"]] for order in orders]


def test_twenty_concurrent_orders_on_two_workers(stack, database):
    widths = [520 + 10 * index for index in range(16)] + [730] * 4  # on the 10 mm step; 4 orders share one
    keys = [f"it-{uuid.uuid4()}" for _ in widths]
    posts = [(shelf(width), key) for width, key in zip(widths, keys, strict=True)]
    posts += [(shelf(widths[0]), keys[0])] * 4  # a client retrying its first order while it is being placed
    barrier = threading.Barrier(len(posts))

    def post(job):
        body, key = job
        barrier.wait()
        return stack.request("POST", "/api/v1/orders", body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(len(posts)) as pool:
        responses = list(pool.map(post, posts))
    assert [status for status, _, _ in responses] == [201] * len(posts), f"{[r[1] for r in responses]}\n{stack.logs()}"
    orders = [body for _, body, _ in responses[:20]]
    assert len({order["id"] for order in orders}) == 20
    assert {body["id"] for _, body, _ in responses[20:]} == {orders[0]["id"]}  # the retries got the first order

    ready = wait_until_ready(stack, orders)

    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 20
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 20
        items = session.scalars(select(OrderItem)).all()
        artifacts = session.scalars(select(Artifact)).all()
    assert len(items) == 20 and {item.state for item in items} == {"ready"}
    assert [item.attempts for item in items] == [1] * 20, f"an item was claimed twice:\n{stack.logs()}"
    per_item = {item.id: [a for a in artifacts if a.item_id == item.id] for item in items}
    assert all(len({a.filename for a in files}) == len(files) for files in per_item.values())
    assert {len(files) for files in per_item.values()} == {len(per_item[items[0].id])}
    worker_pids = {item.rendered_by.split(":")[1] for item in items}
    assert len(worker_pids) >= 2, f"one worker did all the work: {worker_pids}\n{stack.logs()}"

    shared = set()
    for shown, width in zip(ready, widths, strict=True):
        [item] = shown["items"]
        assert {f["format"] for f in item["files"]} == ORDER_FORMATS and item["params"]["width"] == width
        stl = next(f for f in item["files"] if f["format"] == "stl" and f["part"] == "board")
        status, data, _ = stack.get(stl["url"])
        assert status == 200 and hashlib.sha256(data).hexdigest() == stl["sha256"]
        if width == 730:
            shared.add(stl["sha256"])
    assert len(shared) == 1  # one configuration, one set of bytes, whichever worker placed it


def _rendering(stack: Stack, database: Database, item_id: int, timeout: float = 60) -> OrderItem:
    """The item as soon as a worker holds it (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.session() as session:
            item = session.get(OrderItem, item_id)
        if item.state == "rendering" and item.lease_owner:
            return item
        assert item.state in ("queued", "rendering"), f"item reached {item.state} before it could be killed"
        time.sleep(0.01)
    raise AssertionError(f"the item never started rendering:\n{stack.logs()}")


def _place_slow_order(stack: Stack, database: Database, width: float) -> tuple[dict, int]:
    status, order, _ = stack.request("POST", "/api/v1/orders", {
        **shelf(width), "items": [{"template": "wall_shelf", "params": {"width": width, "hole_pitch": 40},
                                   "material": "pla"}]})
    assert status == 201, order
    with database.session() as session:
        item_id = session.scalar(select(OrderItem.id).where(OrderItem.order_id == order["id"]))
    return order, item_id


def _worker_groups(stack: Stack) -> dict[int, str]:
    return {process.pid: name for name, process, _ in stack.processes if name.startswith("worker")
            and process.poll() is None}


def _assert_killed_mid_render(database: Database, item_id: int, owner: str) -> None:
    time.sleep(0.2)
    with database.session() as session:
        item = session.get(OrderItem, item_id)
        files = session.scalar(select(func.count()).select_from(Artifact).where(Artifact.item_id == item_id))
    assert item.state == "rendering" and item.lease_owner == owner and files == 0, (item.state, item.lease_owner)


def test_a_worker_process_killed_mid_render_loses_nothing(stack, database):
    order, item_id = _place_slow_order(stack, database, 1430)
    item = _rendering(stack, database, item_id)
    pid = int(item.lease_owner.split(":")[1])
    assert os.getpgid(pid) in _worker_groups(stack)  # a render process of one of our workers
    os.kill(pid, signal.SIGKILL)
    _assert_killed_mid_render(database, item_id, item.lease_owner)

    [shown] = wait_until_ready(stack, [order], timeout=90)
    with database.session() as session:
        finished = session.get(OrderItem, item_id)
    assert finished.attempts == 2 and finished.rendered_by != item.lease_owner
    assert {f["format"] for f in shown["items"][0]["files"]} == ORDER_FORMATS
    status, manifest, _ = stack.get(shown["items"][0]["manifest"])
    assert status == 200 and manifest["checks"]["watertight"] and manifest["params"]["width"] == 1430


def test_a_whole_worker_killed_mid_render_is_taken_over_by_the_other(stack, database):
    order, item_id = _place_slow_order(stack, database, 1470)
    item = _rendering(stack, database, item_id)
    pid = int(item.lease_owner.split(":")[1])
    groups = _worker_groups(stack)
    victim = os.getpgid(pid)
    assert victim in groups and len(groups) == 2
    os.killpg(victim, signal.SIGKILL)  # the consumer and all its processes, as if the machine died
    _assert_killed_mid_render(database, item_id, item.lease_owner)

    [shown] = wait_until_ready(stack, [order], timeout=90)
    with database.session() as session:
        finished = session.get(OrderItem, item_id)
    survivor = int(finished.rendered_by.split(":")[1])
    assert os.getpgid(survivor) != victim and os.getpgid(survivor) in groups
    assert finished.attempts == 2 and shown["items"][0]["state"] == "ready"
    assert Path(stack.folder / "output" / "orders" / order["id"] / "1" / "manifest.json").is_file()
