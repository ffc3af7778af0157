"""Instant estimates: a new printed configuration is priced at once from the printer's past slices (real
PrusaSlicer slices of the templates, recorded in ``tests/parametric/fdm/data/template_slices.csv``), marked as
an estimate with its expected error, and replaced by the sliced price when the worker has sliced it; checkout
and orders only ever show the sliced price, and without enough past slices there is no estimate, and the
answer says why."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from parametric.fdm.estimator import FEATURES, MIN_SLICES, PartFeatures
from parametric.machines import machine_from_dict
from tests.parametric import conftest as tools
from web.models import SliceModelRow, SliceRecord
from web.orders import estimates

from .conftest import run_queue, services
from .test_manufacturing import PRINTER, add_printer

prusa_slicer = tools.prusa_slicer
RECORDED = Path(__file__).resolve().parents[1] / "parametric" / "fdm" / "data" / "template_slices.csv"
_depths = itertools.count(0)


def recorded_slices() -> list[dict[str, str]]:
    with RECORDED.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def seed(app: Any, rows: list[dict[str, str]]) -> None:
    """Record real past slices as the shop's own (the test printer is the one they were sliced for)."""
    printer = machine_from_dict(PRINTER)
    for row in rows:
        features = PartFeatures(*(float(row[name]) for name in FEATURES))
        estimates.record_slice(services(app).database, printer, row["material"], row["template"],
                               f"{row['template']}:{row['configuration']}:{row['part']}", features,
                               float(row["print_time_s"]), float(row["filament_g"]))


def new_leg_cap() -> dict[str, Any]:
    """A leg cap no other test of this module quotes (its quote build is new: the slice is a worker's job)."""
    return {"template": "leg_cap", "params": {"sleeve_depth": 31.5 + next(_depths) * 0.5}, "quantity": 2,
            "material": "pla"}


def run_one(app: Any) -> None:
    """Execute the next task of the app's queue (the preview just asked for), and nothing else."""
    huey = services(app).queue.huey
    task = huey.dequeue()
    if task is not None:
        huey.execute(task)


def show_preview(app: Any, client: Any, line: dict[str, Any]) -> None:
    """The configurator's first step: the preview, which makes the STL the estimate reads."""
    url = (f"/configure/{line['template']}/preview?params.sleeve_depth={line['params']['sleeve_depth']}"
           f"&quantity={line['quantity']}&material={line['material']}")
    for _ in range(3):
        response = client.get(url)
        if response.status_code == 200:
            return
        run_one(app)  # only the preview: the quote's slice must not be made yet
    raise AssertionError(f"no preview for {url}")


def test_recorded_slices_match_the_test_printer():
    """The recorded slices were made with the profile the test printer slices with: otherwise no model is used."""
    printer = machine_from_dict(PRINTER)
    profiles = {row["profile"] for row in recorded_slices()}
    assert profiles == {estimates.profile_of(printer, "pla")}


def test_a_new_printed_configuration_is_estimated_at_once_then_sliced(app, client, staff, prusa_slicer):
    assert add_printer(client, staff).status_code == 201
    rows = recorded_slices()
    seed(app, rows)
    database = services(app).database
    profile = estimates.profile_of(machine_from_dict(PRINTER), "pla")
    with database.session() as session:
        model = session.get(SliceModelRow, ("mk3", "pla", profile))
    assert model is not None and model.slices == len(rows) and model.model is not None
    leg_caps = len({tuple(r[n] for n in FEATURES) for r in rows if r["template"] == "leg_cap"})
    assert model.model["products"]["leg_cap"]["slices"] == leg_caps
    line = new_leg_cap()
    show_preview(app, client, line)

    first = client.post("/api/v1/quotes", json=line)
    assert first.status_code == 202 and first.headers["Retry-After"]  # still being sliced: ask again
    estimate = first.get_json()
    assert estimate["state"] == "estimate" and estimate["figures"] == "estimate"
    [part] = estimate["parts"]
    assert part["estimate"]["source"] == "estimate" and part["estimate"]["machine"] == "mk3"
    # scaled to the leg caps sliced before, at their error
    assert part["estimate"]["fitted_to"] == "product" and part["estimate"]["slices"] == leg_caps
    assert part["estimate"]["time_error_pct"] == round(model.model["products"]["leg_cap"]["time_error_pct"], 1)
    spread = estimate["estimate"]
    assert 0 < spread["error_pct"] < 100
    assert spread["low"] < estimate["price"]["total"] < spread["high"]
    assert "estimate" in spread["note"]

    run_queue(app)  # the worker slices it
    final = client.post("/api/v1/quotes", json=line)
    assert final.status_code == 200
    sliced = final.get_json()
    assert sliced["figures"] == "final" and "estimate" not in sliced
    [part_sliced] = sliced["parts"]
    assert part_sliced["estimate"]["source"] == "prusaslicer"
    guessed, real = part["estimate"]["print_time_s"], part_sliced["estimate"]["print_time_s"]
    # the estimate is an estimate: within three times its stated error of the slice
    assert abs(guessed - real) / real * 100 < 3 * part["estimate"]["time_error_pct"] + 1
    # the slice came in: recorded, and the model refitted with it
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SliceRecord)) == len(rows) + 1
        refitted = session.get(SliceModelRow, ("mk3", "pla", profile))
    assert refitted.slices == len(rows) + 1 and refitted.model["products"]["leg_cap"]["slices"] == leg_caps + 1


def test_checkout_never_shows_an_estimate(app, client, staff):
    """With an estimate available, the checkout still waits for the slice (the honest-numbers rule)."""
    assert add_printer(client, staff).status_code == 201
    seed(app, recorded_slices())
    line = new_leg_cap()
    show_preview(app, client, line)
    assert client.post("/api/v1/quotes", json=line).get_json()["state"] == "estimate"
    form = {"params.sleeve_depth": str(line["params"]["sleeve_depth"]), "quantity": "2", "material": "pla"}
    page = client.get("/configure/leg_cap/checkout", query_string=form)  # the checkout's own quote
    assert page.status_code == 202  # the page that waits for the price, not a checkout
    assert "Working out the price" in page.get_data(as_text=True)


@pytest.mark.parametrize("recorded", [0, MIN_SLICES - 1])
def test_too_few_past_slices_give_no_estimate_and_say_so(app, client, staff, recorded):
    assert add_printer(client, staff).status_code == 201
    seed(app, recorded_slices()[:recorded])
    line = new_leg_cap()
    show_preview(app, client, line)
    response = client.post("/api/v1/quotes", json=line)
    assert response.status_code == 202
    body = response.get_json()
    assert body["state"] == "preparing" and "price" not in body
    expected = ("no part has been sliced for mk3 in PLA" if recorded == 0
                else f"only {recorded} parts sliced so far; an estimate needs {MIN_SLICES}")
    assert expected in body["estimate_unavailable"]


def test_a_line_with_a_sheet_part_waits_for_its_toolpaths(app, client, staff):
    assert add_printer(client, staff).status_code == 201
    seed(app, recorded_slices())
    line = {"template": "wall_shelf", "params": {"width": 640}, "quantity": 1, "material": "oak"}
    client.get("/configure/wall_shelf/preview?params.width=640&quantity=1&material=oak")
    run_one(app)
    response = client.post("/api/v1/quotes", json=line)
    assert response.status_code == 202
    assert "waits for its toolpaths" in response.get_json()["estimate_unavailable"]


def test_no_printer_for_the_material_gives_no_estimate(app, client, staff):
    """A line no printer can make is priced at the volume rate by the worker: nothing is estimated meanwhile."""
    assert add_printer(client, staff).status_code == 201
    seed(app, recorded_slices())
    line = {**new_leg_cap(), "material": "tpu"}  # mk3 has PLA and PETG loaded
    url = (f"/configure/leg_cap/preview?params.sleeve_depth={line['params']['sleeve_depth']}&quantity=2"
           "&material=tpu")
    client.get(url)
    run_one(app)
    response = client.post("/api/v1/quotes", json=line)
    assert response.status_code == 202
    body = response.get_json()
    assert body["state"] == "preparing" and "no printer has TPU" in body["estimate_unavailable"]
