"""Batching end to end on real servers: three orders (two bookcases, four doors, some printed pulls) through
``parametric serve`` and a ``parametric worker`` on PostgreSQL and Redis become batches by machine and material;
the sheets go to a router's hot folder, the plate to a real OctoPrint driving its Virtual Printer, and the
worker follows them (its Batcher duty); every job ends done and no part is made twice. A pull reported failed
on its plate is then printed again alone, on a plate of its own, while its order's other parts stay done.

The Virtual Printer is told to run its moves fast (``M220 S2000``: its feed rate multiplier), so a plate of
small pulls prints in about a minute, most of it simulated heating.
"""

from __future__ import annotations

import base64
import collections
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.parametric import conftest as tools
from tests.parametric.conftest import octoprint  # noqa: F401  (the session's real OctoPrint)
from web.db import Database
from web.models import Batch, BatchPlacement, BatchSheet, Job, OrderItem

from .conftest import STAFF
from .live import Stack
from .test_integration import database, postgres_url, redis_url  # noqa: F401  (module fixtures)

pytestmark = pytest.mark.integration
rs274 = tools.rs274

BOOKCASE = {"template": "bookcase", "preset": "low-kids", "quantity": 1, "material": "birch_plywood"}
DOOR = {"template": "cabinet_door", "preset": "drawer-front-80", "params": {"width": 302.0, "height": 150.0},
        "quantity": 2, "material": "birch_plywood"}
PULL = {"template": "drawer_pull", "preset": "small-drawer-64", "material": "pla"}
ORDERS = [[BOOKCASE, {**PULL, "quantity": 2}], [BOOKCASE, DOOR], [DOOR, {**PULL, "quantity": 1}]]
"""Two bookcases, four doors and three pulls in three orders, so every batch holds parts of several orders."""
PARTS_PER_ITEM = {"bookcase": {"side": 2, "top": 1, "bottom": 1, "shelf": 1, "back": 1}, "cabinet_door": {"door": 1},
                  "drawer_pull": {"drawer_pull": 1}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url) -> Iterator[Stack]:  # noqa: F811
    """serve (no embedded worker) and one worker with batching on: the dispatcher every second, the batcher every
    two, short nesting budgets; batches close when staff close them."""
    import redis

    folder = tmp_path_factory.mktemp("batching")
    queue_name = f"parametric-test-{uuid.uuid4().hex[:12]}"
    live = Stack(folder, {
        "DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "PARAMETRIC_HUEY_NAME": queue_name,
        "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
        "PARAMETRIC_CACHE_FOLDER": str(folder / "cache"), "PARAMETRIC_PUBLIC_URL": "https://workshop.example",
        "PARAMETRIC_BATCHING": "true", "PARAMETRIC_DISPATCH_INTERVAL_SECONDS": "1",
        "PARAMETRIC_BATCH_INTERVAL_SECONDS": "2", "PARAMETRIC_BATCH_NEST_SECONDS": "2",
        "PARAMETRIC_BATCH_PLATE_SECONDS": "1", "PARAMETRIC_BATCH_CLOSE_UTILISATION": "1.01",
        "PARAMETRIC_WORKER_HEARTBEAT_SECONDS": "1",
        "PARAMETRIC_CATALOG_WARM_UP": "false",  # the shop front's ~130 from-price quotes would outrank the jobs
    })
    try:
        live.start_server("--no-worker")
        added = subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password",
                                STAFF[1]], env=live.env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        live.start_worker("worker")
        live.wait_for_log("worker", "Huey consumer started")
        yield live
    finally:
        live.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{queue_name}*"):
            client.delete(key)


STAFF_HEADERS = {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def staff_call(stack: Stack, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    status, answer, _ = stack.request(method, path, body, headers=STAFF_HEADERS, timeout=timeout)
    assert status in (200, 201), f"{method} {path}: {status} {answer}\n{stack.logs()}"
    return answer


def wait_for(what: str, check: Any, stack: Stack, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s\n{stack.logs()}")
        time.sleep(every)


def all_jobs(db: Database) -> list[Job]:
    with db.session() as session:
        return list(session.scalars(select(Job).order_by(Job.id)).all())


def gathered(db: Database, items: int) -> list[Job] | None:
    """Every job of the ``items`` ordered items, once all are ready and in a batch; a failed one fails the test."""
    with db.session() as session:
        planned = session.scalar(select(OrderItem.id).where(OrderItem.state != "ready").limit(1)) is None
        count = len(session.scalars(select(OrderItem.id)).all())
    found = all_jobs(db)
    failed = [(job.id, job.part, job.last_error) for job in found if job.state == "failed"]
    assert not failed, failed
    kept_out = [(job.id, job.part, job.batching) for job in found if (job.batching or {}).get("kept_out")]
    assert not kept_out, kept_out  # every part batched, none sent alone
    if not planned or count != items or not found or len({job.item_id for job in found}) != items:
        return None
    return found if all(job.state == "ready" and job.batch_id is not None for job in found) else None


def batch_state(db: Database, batch_id: int) -> str:
    with db.session() as session:
        return session.get(Batch, batch_id).state


def test_three_orders_become_batches_sent_to_a_hot_folder_and_octoprint_and_end_done_once(
        stack, database, octoprint, tmp_path):  # noqa: F811
    hot, taken = tmp_path / "hot", tmp_path / "router-sender"
    hot.mkdir()
    taken.mkdir()
    router = tools.router_record("grbl", "shop-router")
    router["stock"] += [{"material": m, "thickness_mm": 6, "size_mm": [2500, 1250]} for m in tools.SHEET_MATERIALS]
    router["delivery"] = {"method": "hot_folder", "path": str(hot)}
    staff_call(stack, "POST", "/api/v1/staff/machines", router)
    staff_call(stack, "POST", "/api/v1/staff/machines", {
        "kind": "printer", "name": "virtual-mk3", "build_volume_mm": [250, 210, 210], "nozzle_diameter_mm": 0.4,
        "materials": ["pla"], "host": {"kind": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key}})
    # the Virtual Printer runs its moves 20 times faster (its heating stays as it is)
    status, _ = octoprint._call("POST", "/api/printer/command", {"commands": ["M220 S2000"]})
    assert status == 204

    orders = []
    for position, items in enumerate(ORDERS, start=1):
        status, order, _ = stack.request("POST", "/api/v1/orders", {
            "customer": {"name": f"Customer {position}", "email": f"c{position}@example.com"}, "items": items})
        assert status == 201, order
        orders.append(order)
    jobs_in = wait_for("every part ready and batched", lambda: gathered(database, 6), stack, timeout=900, every=2)

    with database.session() as session:
        item_of = {item.id: item for item in session.scalars(select(OrderItem)).all()}
    expected = collections.Counter()
    for item in item_of.values():
        for part, count in PARTS_PER_ITEM[item.template].items():
            expected[(item.id, part)] += count * item.quantity
    assert collections.Counter({(job.item_id, job.part): 0 for job in jobs_in}).keys() == expected.keys()

    listed = staff_call(stack, "GET", "/api/v1/staff/batches")["batches"]
    kinds = sorted((b["process"], b["material"], b["thickness_mm"]) for b in listed)
    assert kinds == [("cnc", "birch_plywood", 6), ("cnc", "birch_plywood", 18), ("fdm", "pla", None)], listed
    by_kind = {(b["process"], b["thickness_mm"]): b["id"] for b in listed}
    plate_batch = by_kind[("fdm", None)]
    for batch in listed:  # each batch holds parts of several orders
        detail = staff_call(stack, "GET", f"/api/v1/staff/batches/{batch['id']}")
        assert len({job["order_id"] for job in detail["job_list"]}) >= 2, detail["job_list"]

    # staff close each batch (a router's sheets are cut, checked by rs274; the plate is sliced once) and send it
    for batch_id in by_kind.values():
        closed = staff_call(stack, "POST", f"/api/v1/staff/batches/{batch_id}/close", timeout=600)
        assert closed["state"] == "closed" and closed["last_error"] is None, closed
        assert set(closed["batch_sheet"]) == {"html", "pdf"}
        sent = staff_call(stack, "POST", f"/api/v1/staff/batches/{batch_id}/send", timeout=120)
        assert sent["state"] == "sent" and {j["state"] for j in sent["job_list"]} == {"sent"}, sent
    with database.session() as session:
        sheets = {batch_id: session.scalars(select(BatchSheet).where(BatchSheet.batch_id == batch_id)
                                            .order_by(BatchSheet.index)).all() for batch_id in by_kind.values()}
    delivered = sorted(path.name for path in hot.iterdir())
    programs = sorted(f"batch-{sheet.batch_id}-{sheet.index}-{Path(program).name}"
                      for batch_id, rows in sheets.items() if batch_id != plate_batch
                      for sheet in rows for program in sheet.files["gcode"])
    assert delivered == programs, (delivered, programs)
    for program in delivered:  # the router's sender takes each program from the hot folder
        shutil.move(hot / program, taken / program)
    for (process, _), batch_id in by_kind.items():
        if process == "cnc":  # the worker sees the sheets taken; the folder reports no end: staff mark it done
            wait_for(f"router batch {batch_id} running", lambda b=batch_id: batch_state(database, b) == "running",
                     stack, timeout=60)
            assert staff_call(stack, "POST", f"/api/v1/staff/batches/{batch_id}/done")["state"] == "done"
    # the worker follows the plate on OctoPrint to its end
    wait_for("the plate printed", lambda: batch_state(database, plate_batch) in ("done", "failed"), stack,
             timeout=600, every=2)
    assert batch_state(database, plate_batch) == "done"
    assert {job.state for job in all_jobs(database)} == {"done"}

    # a pull came off its plate half made: it is printed again alone; the other parts stay done
    plate = staff_call(stack, "GET", f"/api/v1/staff/batches/{plate_batch}")
    [plate_sheet] = plate["sheet_list"]
    gcode = Path(sheets[plate_batch][0].files["gcode"][0]).read_text()
    assert set(re.findall(r"; printing object (\S+)", gcode)) == {p["object"] for p in plate_sheet["placements"]}
    failed = plate_sheet["placements"][1]
    remade = staff_call(stack, "POST", f"/api/v1/staff/batches/{plate_batch}/placements/{failed['id']}/remake",
                        timeout=300)
    assert remade["state"] == "sent" and remade["id"] != plate_batch and "1 plate(s) sent" in remade["outcome"]
    [remake_job] = remade["job_list"]
    assert [(p["job_id"], p["copy"]) for s in remade["sheet_list"] for p in s["placements"]] == \
        [(remake_job["id"], 1)]
    assert {job.state for job in all_jobs(database) if job.id != remake_job["id"]} == {"done"}
    wait_for("the pull printed again", lambda: batch_state(database, remade["id"]) in ("done", "failed"), stack,
             timeout=600, every=2)
    assert batch_state(database, remade["id"]) == "done"
    assert {job.state for job in all_jobs(database)} == {"done"}

    # no part made twice: every copy placed once, the failed pull once more, each upload printed once
    with database.session() as session:
        placed = session.execute(select(Job.item_id, Job.part, Job.id, BatchPlacement.copy)
                                 .join(BatchPlacement, BatchPlacement.job_id == Job.id)).all()
    assert len({(job_id, copy) for _, _, job_id, copy in placed}) == len(placed)
    made = collections.Counter((item_id, part) for item_id, part, _, _ in placed)
    pull_item = next(job.item_id for job in jobs_in if job.id == failed["job_id"])
    assert made == expected + collections.Counter({(pull_item, "drawer_pull"): 1})
    status, listing = octoprint._call("GET", "/api/files/local?recursive=true")
    assert status == 200
    uploads = collections.Counter((f.get("userdata") or {}).get("parametric_job") for f in listing["files"])
    prints = {(f.get("userdata") or {}).get("parametric_job"): f.get("prints", {}) for f in listing["files"]}
    assert not [tag for tag in uploads if str(tag).startswith("job-")], uploads  # no part was sent alone
    for tag in (f"batch-{plate_batch}-1", f"batch-{remade['id']}-1"):
        assert uploads[tag] == 1 and prints[tag].get("success") == 1 and not prints[tag].get("failure"), prints
    assert sorted(path.name for path in taken.iterdir()) == programs and list(hot.iterdir()) == []
