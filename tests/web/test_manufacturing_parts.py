"""A multi-part CNC item through the real queue: each job prepares its own part only, so a part no machine can make
fails alone with its reason while the item's other parts are made (it used to fail every job of the item)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.parametric import conftest as tools
from web.models import Job

from .conftest import order_body, run_queue, services

BOOKCASE = {"template": "bookcase", "preset": "low-kids", "params": {"back_panel": True}, "quantity": 1,
            "material": "birch_plywood"}
"""A low bookcase with a 6 mm back: the shop's router stocks 6 mm sheet only in offcuts too small for the back, so
the back cannot be cut. (An unstocked thickness is refused when ordered: the order must be one the shop stocks.)"""


@pytest.mark.integration
def test_each_job_of_a_multi_part_item_prepares_only_its_own_part(app, client, staff):
    record = tools.router_record()
    record["stock"].append({"material": "birch_plywood", "thickness_mm": 6, "size_mm": [300, 300]})
    assert client.post("/api/v1/staff/machines", json=record, headers=staff).status_code == 201
    assert client.post("/api/v1/orders", json=order_body(BOOKCASE)).status_code == 201
    run_queue(app)  # render → ready
    services(app).queue.manufacture()  # plans one job per part and prepares them
    run_queue(app)
    with services(app).database.session() as session:
        found = {job.part: job for job in session.scalars(select(Job).order_by(Job.id))}

    assert set(found) == {"side", "top", "bottom", "shelf", "back"}
    back = found.pop("back")
    assert back.state == "failed" and "the largest 6 mm Birch plywood sheet that fits a router bed is 300 x 300 mm" \
        in back.last_error
    assert {part: job.state for part, job in found.items()} == dict.fromkeys(found, "ready"), \
        {part: job.last_error for part, job in found.items()}
    for part, job in found.items():
        programs = [Path(p) for p in job.files["gcode"]]
        assert programs and all(p.is_file() and p.stem.startswith(part) for p in programs)
        recorded = json.loads((programs[0].parents[1] / "manifest.json").read_text())
        # toolpaths were computed for this job's part alone, and the manifest records what the job made
        assert [p["part"] for p in recorded["cam"]["parts"]] == [part]
        assert [p["name"] for p in recorded["parts"]] == [part]
        assert job.estimates["machining_time_s"] == recorded["cam"]["machining_time_s"] > 0
        gcode = {f["filename"] for f in recorded["files"] if f["format"] == "gcode"}
        assert gcode == {f"cnc/{p.name}" for p in programs}
