"""API benchmark: cache-hit order latency and order throughput with two workers, against the bare render.

1. Kernel-only: ``parametric.render`` of N wall shelves (STEP+STL+3MF+SVG, the order formats, cold cache, warm process),
   in this process, before anything else runs: the bare render time per order.
2. Throughput: ``parametric serve --no-worker`` and ``parametric worker --workers 2`` on loopback;
   N orders of wall shelves shaped like those of step 1 (widths offset by 0.5 mm, so every one
   is a real build) are posted at once; the time from the first order's creation to the last
   item's completion (from the database) gives orders per minute, and per worker the time
   per order as a ratio to the bare render (two workers: 2 x elapsed / N).
3. Cache-hit latency: a configuration rendered before, ordered again M times over one
   keep-alive connection; the time from sending POST /orders to the order being ready.

Prints its figures; asserts nothing.

    .venv/bin/python bench/bench_api.py [--orders 30] [--hits 50] [--backend embedded|scaled]

``embedded`` is the zero-setup default (SQLite database and SQLite queue in a temporary
instance folder); ``scaled`` uses PostgreSQL (127.0.0.1:5432, a database made and dropped
for the run) and Redis (127.0.0.1:6379, a queue name of its own).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

BENCH_FOLDER = Path(tempfile.mkdtemp(prefix="parametric-bench-api-"))
os.environ["PARAMETRIC_OUTPUT"] = str(BENCH_FOLDER / "output")

import parametric  # noqa: E402
from parametric.cache import Cache  # noqa: E402

FORMATS = ("step", "stl", "3mf", "svg")  # what an order renders: the customer's files and the workshop's drawing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def widths(count: int, offset: float = 0.0) -> list[float]:
    """Wall shelf widths spread over the template's range (the same spread for both runs)."""
    return [round(420 + (1000 * index) / max(1, count - 1) + offset, 2) for index in range(count)]


def bare_renders(count: int) -> list[float]:
    """Seconds per full render in this process, cold cache each time, after one warm-up build."""
    import cadquery  # noqa: F401  the kernel import is not part of a render

    parametric.render("wall_shelf", {"width": 611.11}, formats=FORMATS, cache=Cache(BENCH_FOLDER / "warmup"),
                      out_dir=BENCH_FOLDER / "warmup-out")
    seconds = []
    for index, width in enumerate(widths(count)):
        started = time.perf_counter()
        parametric.render("wall_shelf", {"width": width}, formats=FORMATS, cache=Cache(BENCH_FOLDER / "bare-cache"),
                          out_dir=BENCH_FOLDER / "bare" / str(index))
        seconds.append(time.perf_counter() - started)
    return seconds


def _bare_half(job: tuple[int, int]) -> list[float]:
    """One of two processes rendering every other width (for the parallel bare run)."""
    start, count = job
    import cadquery  # noqa: F401

    parametric.render("wall_shelf", {"width": 622.22 + start}, formats=FORMATS, cache=Cache(BENCH_FOLDER / "warm"),
                      out_dir=BENCH_FOLDER / "warm-out")
    seconds = []
    for index, width in list(enumerate(widths(count, offset=0.25)))[start::2]:
        started = time.perf_counter()
        parametric.render("wall_shelf", {"width": width}, formats=FORMATS, cache=Cache(BENCH_FOLDER / "pair-cache"),
                          out_dir=BENCH_FOLDER / "pair" / str(index))
        seconds.append(time.perf_counter() - started)
    return seconds


def parallel_bare_renders(count: int) -> list[float]:
    """The same renders in two processes at once: what two workers' renders cost with the cores shared."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        halves = pool.map(_bare_half, [(0, count), (1, count)])
    return halves[0] + halves[1]


class Stack:
    """The server and one worker command with two processes, stopped with SIGINT at the end."""

    def __init__(self, env: dict[str, str]):
        self.env = {**os.environ, **env}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, log: str) -> None:
        with open(BENCH_FOLDER / log, "wb") as handle:
            self.processes.append(subprocess.Popen([sys.executable, "-m", "parametric.cli", *args], env=self.env,
                                                   stdout=handle, stderr=subprocess.STDOUT, start_new_session=True))

    def up(self) -> None:
        self.start("serve", "--no-worker", "--port", str(self.port), "--threads", "16", log="serve.log")
        self.start("worker", "--workers", "2", log="worker.log")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/templates", timeout=2).read()
                if "Huey consumer started" in (BENCH_FOLDER / "worker.log").read_text(errors="replace"):
                    time.sleep(1.0)  # the worker processes fork right after that line
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the stack did not start; see {BENCH_FOLDER}")

    def down(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def order_body(width: float) -> bytes:
    return json.dumps({"customer": {"name": "Bench", "email": "bench@example.com"},
                       "items": [{"template": "wall_shelf", "params": {"width": width}, "material": "pla"}]}).encode()


def post(port: int, width: float) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/orders", data=order_body(width), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def throughput(stack: Stack, database_url: str, count: int) -> tuple[float, int, float]:
    """Seconds from the first order's creation to the last item's completion, items not ready, and the
    mean render time measured inside the workers (claim to files recorded)."""
    from sqlalchemy import func, select

    from web.db import Database
    from web.models import OrderItem

    barrier = threading.Barrier(count)
    orders: list[dict] = [{} for _ in range(count)]

    def place(index: int, width: float) -> None:
        barrier.wait()
        orders[index] = post(stack.port, width)

    threads = [threading.Thread(target=place, args=(i, w)) for i, w in enumerate(widths(count, offset=0.5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database = Database(database_url)
    deadline = time.monotonic() + 60 + 20 * count
    while time.monotonic() < deadline:
        with database.session() as session:
            waiting = session.scalar(select(func.count()).select_from(OrderItem)
                                     .where(OrderItem.state.in_(("queued", "rendering"))))
        if not waiting:
            break
        time.sleep(0.2)
    ids = [order["id"] for order in orders]
    with database.session() as session:
        first = session.scalar(select(func.min(OrderItem.created_at)).where(OrderItem.order_id.in_(ids)))
        last = session.scalar(select(func.max(OrderItem.finished_at)).where(OrderItem.order_id.in_(ids)))
        failed = session.scalar(select(func.count()).select_from(OrderItem)
                                .where(OrderItem.order_id.in_(ids), OrderItem.state != "ready"))
        in_worker = session.scalar(select(func.avg(OrderItem.render_seconds)).where(OrderItem.order_id.in_(ids)))
    database.dispose()
    return (last - first).total_seconds(), failed, float(in_worker or 0)


def cache_hit_latency(stack: Stack, count: int) -> list[float]:
    """POST /orders → ready for a configuration already rendered, over one keep-alive connection."""
    width = 888.88
    first = post(stack.port, width)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/api/v1/orders/{first['id']}"
                                    f"?token={first['token']}") as response:
            if json.loads(response.read())["status"] == "ready":
                break
        time.sleep(0.1)
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", "/api/v1/orders", body=order_body(width),
                           headers={"Content-Type": "application/json"})
        order = json.loads(connection.getresponse().read())
        while order["status"] != "ready":  # the API finishes a cached configuration in the request
            connection.request("GET", f"/api/v1/orders/{order['id']}", headers={"X-Order-Token": order["token"]})
            order = json.loads(connection.getresponse().read())
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


def scaled_backend() -> tuple[dict[str, str], callable]:
    import psycopg
    import redis

    name = f"parametric_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    queue = f"parametric-bench-{uuid.uuid4().hex[:10]}"

    def cleanup() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)

    return {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            "REDIS_URL": "redis://127.0.0.1:6379/0", "PARAMETRIC_HUEY_NAME": queue}, cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=30, help="orders for the throughput run (default 30)")
    parser.add_argument("--hits", type=int, default=50, help="cache-hit orders for the latency run (default 50)")
    parser.add_argument("--backend", choices=("embedded", "scaled"), default="embedded")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; backend {args.backend}")
    bare = bare_renders(args.orders)
    bare_mean = statistics.mean(bare)
    formats = "+".join(f.upper() for f in FORMATS)
    print(f"kernel-only render (wall_shelf, {formats}, n={len(bare)}): mean {bare_mean * 1000:.0f} ms, "
          f"p50 {percentile(bare, 50) * 1000:.0f} ms, p95 {percentile(bare, 95) * 1000:.0f} ms")
    pair = parallel_bare_renders(args.orders)
    pair_mean = statistics.mean(pair)
    print(f"kernel-only render, two processes at once (no queue): mean {pair_mean * 1000:.0f} ms "
          f"({pair_mean / bare_mean:.2f}x the single render: the cost of sharing the cores)")

    env = {"PARAMETRIC_INSTANCE": str(BENCH_FOLDER / "instance"), "PARAMETRIC_OUTPUT": str(BENCH_FOLDER / "output"),
           "PARAMETRIC_CACHE_FOLDER": str(BENCH_FOLDER / "cache"), "DATABASE_URL": "", "REDIS_URL": "",
           # every order comes from this one address: lift the orders-per-client limit for the run
           "PARAMETRIC_ORDERS_PER_CLIENT": str(10 * (args.orders + args.hits))}
    cleanup = None
    if args.backend == "scaled":
        extra, cleanup = scaled_backend()
        env.update(extra)
    stack = Stack(env)
    try:
        stack.up()
        from web.config import load_config

        os.environ.update({k: v for k, v in env.items()})
        database_url = load_config()["DATABASE_URL"]
        elapsed, failed, in_worker = throughput(stack, database_url, args.orders)
        per_order = 2 * elapsed / args.orders
        print(f"throughput, 2 workers, {args.orders} wall_shelf orders posted at once: {elapsed:.1f} s, "
              f"{args.orders / elapsed * 60:.1f} orders/min ({failed} not ready)")
        print(f"  per order per worker {per_order * 1000:.0f} ms = {per_order / bare_mean:.2f}x the bare render "
              f"(target <= 1.3x); ideal 2-worker rate {2 / bare_mean * 60:.1f} orders/min")
        print(f"  = {per_order / pair_mean:.2f}x the two-process bare render (the system's own overhead, "
              f"with the cores shared alike)")
        print(f"  of which: the render inside a worker {in_worker * 1000:.0f} ms ({in_worker / bare_mean:.2f}x bare), "
              f"queue, database and file placing {(per_order - in_worker) * 1000:.0f} ms per order")
        latencies = cache_hit_latency(stack, args.hits)
        print(f"cache-hit POST /orders -> ready (n={len(latencies)}): p50 {percentile(latencies, 50) * 1000:.1f} ms, "
              f"p95 {percentile(latencies, 95) * 1000:.1f} ms (target p50 < 50 ms)")
    finally:
        stack.down()
        if cleanup is not None:
            cleanup()
    print(f"load average {os.getloadavg()[0]:.2f} at the end; logs and files in {BENCH_FOLDER}")


if __name__ == "__main__":
    main()
