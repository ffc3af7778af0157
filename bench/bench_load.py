"""Load benchmark: a bounded load on cached and uncached endpoints, on both backends.

For each backend, ``parametric serve --no-worker`` and ``parametric worker --workers W`` on loopback:

1. Cached: ``--requests`` requests from ``--concurrency`` threads over cached endpoints (the template list, a
   template's schema, a cached preview, a cached quote, a configurator page, the staff queue): p50, p99, errors.
2. A burst of ``--new`` new-configuration previews at once, while the cached load keeps running: how long the
   previews take to be answered (202: queued for the workers, never built in the request), the cached
   endpoints' p50/p99 during the burst (target: p99 under 200 ms), and how long the workers take to build
   them all.

Errors are 5xx answers and failed connections; 429 (the per-client limit) is counted apart. Prints its figures;
asserts nothing.

    .venv/bin/python bench/bench_load.py [--backend embedded|scaled|both] [--requests 600] [--new 50]

``embedded``: SQLite database and SQLite queue in a temporary instance folder; ``scaled``: PostgreSQL
(127.0.0.1:5432, a database made and dropped for the run) and Redis (127.0.0.1:6379, a queue of its own).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.web.live import Stack, postgres_database  # noqa: E402

STAFF = ("bench", "a bench password")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Tally:
    """Latencies and outcomes of one phase."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.errors = self.limited = 0
        self.lock = threading.Lock()

    def add(self, seconds: float, status: int) -> None:
        with self.lock:
            self.seconds.append(seconds)
            self.errors += status >= 500 or status == 0
            self.limited += status == 429

    def line(self, label: str) -> str:
        ms = [s * 1000 for s in self.seconds]
        return (f"  {label:<34} n={len(ms):>5}  p50 {statistics.median(ms) if ms else float('nan'):7.1f} ms  "
                f"p99 {percentile(ms, 99):7.1f} ms  max {max(ms) if ms else float('nan'):7.1f} ms  "
                f"errors {self.errors}  429s {self.limited}")


def timed(stack: Stack, tally: Tally, method: str, path: str, body=None, headers=None) -> int:
    started = time.perf_counter()
    try:
        status = stack.request(method, path, body, headers=headers, timeout=60)[0]
    except OSError:
        status = 0
    tally.add(time.perf_counter() - started, status)
    return status


def run(backend: str, requests: int, new: int, concurrency: int, workers: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"parametric-bench-load-{backend}-"))
    env = {"PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
           "PARAMETRIC_CACHE_FOLDER": str(folder / "cache"), "PARAMETRIC_HUEY_NAME": f"bench-{uuid.uuid4().hex[:8]}",
           "PARAMETRIC_BUILD_LIMIT": str(new * 4), "PARAMETRIC_BUILD_POLL_SECONDS": "1"}
    if backend == "embedded":
        env.update(DATABASE_URL=f"sqlite:///{folder / 'instance' / 'parametric.db'}", REDIS_URL="")
        with _stack(folder, env) as stack:
            _phases(stack, backend, requests, new, concurrency, workers)
        return
    with postgres_database() as url:
        env.update(DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:6379/0")
        with _stack(folder, env) as stack:
            _phases(stack, backend, requests, new, concurrency, workers)
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        for key in client.scan_iter(match=f"*{env['PARAMETRIC_HUEY_NAME']}*"):
            client.delete(key)


class _stack:
    def __init__(self, folder: Path, env: dict[str, str]):
        self.stack = Stack(folder, env)

    def __enter__(self) -> Stack:
        return self.stack

    def __exit__(self, *exc: object) -> None:
        self.stack.stop()


def _ready(stack: Stack, method: str, path: str, body=None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while stack.request(method, path, body)[0] != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never became ready:\n{stack.logs()}")
        time.sleep(0.5)


def _phases(stack: Stack, backend: str, requests: int, new: int, concurrency: int, workers: int) -> None:
    subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password", STAFF[1]],
                   env=stack.env, check=True, capture_output=True)
    staff = {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}
    stack.start_server("--no-worker")
    stack.start_worker("worker", workers=workers)
    stack.wait_for_log("worker", "Huey consumer started")
    preview = "/configure/leg_cap/preview?params.sleeve_depth=15&quantity=1&material=pla"
    quote = {"template": "leg_cap", "params": {"sleeve_depth": 15}, "material": "pla"}
    _ready(stack, "GET", preview)
    _ready(stack, "POST", "/api/v1/quotes", quote)
    cached = [("GET", "/api/v1/templates", None, None), ("GET", "/api/v1/templates/leg_cap", None, None),
              ("GET", preview, None, None), ("POST", "/api/v1/quotes", quote, None),
              ("GET", "/configure/leg_cap", None, None), ("GET", "/api/v1/staff/queue", None, staff)]
    print(f"\n{backend}: serve + worker --workers {workers}, {concurrency} client threads "
          f"(a shared machine: figures vary with the other load on it)")

    quiet = Tally()
    per_endpoint = {index: Tally() for index in range(len(cached))}

    def one(i: int) -> None:
        index = i % len(cached)
        started = time.perf_counter()
        status = timed(stack, quiet, *cached[index])
        per_endpoint[index].add(time.perf_counter() - started, status)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    print(quiet.line("cached, quiet (all endpoints)"))
    for index, (method, path, _, headers) in enumerate(cached):
        label = f"  {method} {path.split('?')[0]}" + (" (basic auth)" if headers else "")
        print(per_endpoint[index].line(label[:34]))

    during, during_auth, burst = Tally(), Tally(), Tally()
    stop = threading.Event()

    def background() -> None:
        index = 0
        while not stop.is_set():
            method, path, body, headers = cached[index % len(cached)]
            timed(stack, during_auth if headers else during, method, path, body, headers)
            index += 1

    probes = [threading.Thread(target=background) for _ in range(max(1, concurrency // 2))]
    for thread in probes:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    paths = [f"/configure/leg_cap/preview?params.sleeve_depth={5 + 0.5 * i:g}&quantity=1&material=pla"
             for i in range(new) if abs(5 + 0.5 * i - 15) > 1e-9]
    with ThreadPoolExecutor(len(paths)) as pool:
        list(pool.map(lambda path: timed(stack, burst, "GET", path), paths))
    answered_s = time.monotonic() - started
    time.sleep(5)
    stop.set()
    for thread in probes:
        thread.join()
    print(burst.line(f"{len(paths)} new previews (202, queued)"))
    print(during.line("cached, during the burst"))
    print(during_auth.line("staff API (basic auth), during it"))
    p99 = percentile(during.seconds, 99) * 1000
    print(f"  all {len(paths)} new previews answered in {answered_s:.2f} s; cached p99 during the burst "
          f"{p99:.0f} ms ({'within' if p99 < 200 else 'over'} the 200 ms target)")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status, report, _ = stack.get("/api/v1/staff/queue", headers=staff)
        if status == 200 and not report["builds"].get("preview"):
            break
        time.sleep(0.5)
    print(f"  the workers built the {len(paths)} previews {time.monotonic() - started:.1f} s after the burst began")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("embedded", "scaled", "both"), default="both")
    parser.add_argument("--requests", type=int, default=600, help="cached requests in the quiet phase")
    parser.add_argument("--new", type=int, default=50, help="new-configuration previews in the burst")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    for backend in (("embedded", "scaled") if args.backend == "both" else (args.backend,)):
        run(backend, args.requests, args.new, args.concurrency, args.workers)


if __name__ == "__main__":
    main()
