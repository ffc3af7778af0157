"""Quotes: the price follows the core's measured mass and the configured rates; the lead time follows the queue."""

from __future__ import annotations

import time

import pytest

import parametric
from parametric.materials import get_material
from tests.parametric import conftest as tools

from .conftest import answered, order_body, services, unique_shelf, unique_width

prusa_slicer = tools.prusa_slicer  # real PrusaSlicer: skipped loudly when missing, a failure under CI=true


def test_price_is_material_plus_machine_time_plus_setup(app, client, cache_folder):
    """No printer set up: time and material come from the volume at the configured rates."""
    response = answered(app, client, "POST", "/api/v1/quotes",
                      json={"template": "leg_cap", "params": {"sleeve_depth": 21.5},
                                                   "quantity": 3, "material": "petg"})
    assert response.status_code == 200
    quote = response.get_json()
    manifest = parametric.render("leg_cap", {"sleeve_depth": 21.5}, formats=["stl"], material="petg",
                                 cache=parametric.cache.Cache(cache_folder))
    assert manifest.cache_hit  # the quote built it; this reads the same cache entry
    petg = get_material("petg")
    config = app.config
    material = manifest.mass_g / 1000 * petg.cost_per_kg
    hours = manifest.volume_mm3 / config["MACHINE_RATE_MM3_PER_S"]["fdm"] / 3600
    machine = hours * config["MACHINE_RATE_PER_HOUR"]["fdm"]
    price = quote["price"]
    assert quote["unit"]["mass_g"] == manifest.mass_g and quote["unit"]["volume_mm3"] == manifest.volume_mm3
    assert price["unit"] == pytest.approx(material + machine, abs=0.01)
    assert price["material"] == pytest.approx(3 * material, abs=0.01)
    assert price["machine"] == pytest.approx(3 * machine, abs=0.01)
    assert price["setup"] == config["SETUP_FEE"]["fdm"]
    assert price["total"] == pytest.approx(3 * (material + machine) + config["SETUP_FEE"]["fdm"], abs=0.02)
    assert price["currency"] == config["CURRENCY"] and quote["material"]["process"] == "fdm"
    assert quote["lead_time"]["production_days"] == config["PRODUCTION_DAYS"]["fdm"]
    [part] = quote["parts"]
    assert part["estimate"] == {"source": "volume rate", "reason": "no printer is set up in the shop",
                                "machine_time_s": round(hours * 3600 * 3, 1)}


def test_a_mixed_product_prices_each_part_in_its_own_material_and_process(app, client, cache_folder):
    """A wall shelf in oak: the board is cut from oak at the CNC rates, the brackets are printed in PLA."""
    width = unique_width()
    quote = answered(app, client, "POST", "/api/v1/quotes", json={"template": "wall_shelf", "params": {"width": width},
                                                "quantity": 2, "material": "oak"}).get_json()
    assert quote["params"]["width"] == round(width / 10) * 10  # snapped to the field's 10 mm step
    manifest = parametric.render("wall_shelf", quote["params"], formats=["stl"], material="oak",
                                 cache=parametric.cache.Cache(cache_folder))
    parts = {p["name"]: p for p in manifest.parts}
    assert (parts["board"]["material"], parts["bracket"]["material"]) == ("oak", "pla")
    config = app.config
    expected_material = expected_machine = 0.0
    for part in manifest.parts:
        material, process = get_material(part["material"]), part["process"]
        copies = part["quantity"] * 2
        if process == "cnc":  # the sheet it takes: footprint / nesting utilisation, at its thickness
            x, y, _ = part["size_mm"]
            grams = material.mass_g(x * y / config["SHEET_UTILISATION"] * part["thickness_mm"])
        else:
            grams = material.mass_g(part["volume_mm3"])
        expected_material += grams / 1000 * material.cost_per_kg * copies
        expected_machine += (part["volume_mm3"] / config["MACHINE_RATE_MM3_PER_S"][process] / 3600
                             * config["MACHINE_RATE_PER_HOUR"][process] * copies)
    price = quote["price"]
    assert quote["material"]["process"] == "cnc" and quote["quantity"] == 2
    assert price["material"] == pytest.approx(expected_material, abs=0.01)
    assert price["machine"] == pytest.approx(expected_machine, abs=0.01)
    assert price["setup"] == config["SETUP_FEE"]["cnc"] + config["SETUP_FEE"]["fdm"]
    assert quote["lead_time"]["production_days"] == max(config["PRODUCTION_DAYS"].values())
    shown = {p["name"]: (p["process"], p["material"], p["copies"]) for p in quote["parts"]}
    assert shown == {"board": ("cnc", "oak", 2), "bracket": ("fdm", "pla", 2 * parts["bracket"]["quantity"])}
    assert quote["unit"]["mass_g"] == manifest.mass_g == pytest.approx(
        sum(p["mass_g"] * p["quantity"] for p in manifest.parts), abs=0.05)


@pytest.mark.integration
def test_prusaslicer_estimates_price_a_printed_part_and_are_the_jobs_estimates(app, client, staff, prusa_slicer):
    """A printer is set up: the quote slices the part with real PrusaSlicer for it, and the job made from the
    order carries the same estimates, parsed from the same slicer output."""
    from sqlalchemy import select

    from web import jobs
    from web.models import OrderItem

    from .conftest import run_queue
    from .test_manufacturing import add_printer

    assert add_printer(client, staff).status_code == 201  # mk3: PLA and PETG loaded
    line = {"template": "leg_cap", "params": {"sleeve_depth": 10 + unique_width() % 20}, "quantity": 2,
            "material": "pla"}
    quote = answered(app, client, "POST", "/api/v1/quotes", json=line).get_json()
    [part] = quote["parts"]
    estimate = part["estimate"]
    assert estimate["source"] == "prusaslicer" and estimate["machine"] == "mk3"
    assert estimate["print_time_s"] > 60 and estimate["filament_g"] > 0.5 and estimate["filament_mm"] > 100
    config, pla = app.config, get_material("pla")
    hours = estimate["print_time_s"] / 3600
    assert part["unit_machine_hours"] == pytest.approx(hours, abs=1e-4)
    assert quote["price"]["machine"] == pytest.approx(2 * hours * config["MACHINE_RATE_PER_HOUR"]["fdm"], abs=0.01)
    assert quote["price"]["material"] == pytest.approx(2 * estimate["filament_g"] / 1000 * pla.cost_per_kg,
                                                       abs=0.01)
    again = answered(app, client, "POST", "/api/v1/quotes", json=line).get_json()["parts"][0]["estimate"]
    assert again == estimate  # sliced once: the second quote is priced from the recorded measurements

    # the order made from that line: one job per plate, sliced by the same PrusaSlicer, the same figures per copy
    ordered = {**line, "params": quote["params"], "quantity": 1}  # what was quoted (snapped to the steps)
    assert client.post("/api/v1/orders", json=order_body(ordered)).status_code == 201
    run_queue(app)
    database, output = services(app).database, services(app).generation.output_folder
    with database.session() as session:
        item_id = session.scalar(select(OrderItem.id).where(OrderItem.state == "ready"))
    [job_id] = jobs.plan_item(database, output, item_id)
    assert jobs.prepare(database, output, job_id) == "ready"
    job = jobs.get(database, job_id)
    for key in ("print_time_s", "filament_mm", "filament_g", "cost"):
        assert job.estimates[key] == estimate[key]
    sheet = open(job.files["job_sheet_html"]).read()
    assert "Print time (PrusaSlicer)" in sheet and "PLA" in sheet


def test_a_printer_without_the_material_falls_back_to_the_volume_rate_and_says_why(app, client, staff):
    from .test_manufacturing import add_printer

    assert add_printer(client, staff).status_code == 201  # PLA and PETG only
    quote = answered(app, client, "POST", "/api/v1/quotes",
                      json={"template": "heel_lift", "material": "tpu"}).get_json()
    assert [part["name"] for part in quote["parts"]] == ["left_heel_lift", "right_heel_lift"]  # a pair
    for part in quote["parts"]:
        assert part["estimate"]["source"] == "volume rate"
        assert "no printer has TPU 95A (flexible) loaded" in part["estimate"]["reason"]


def test_a_cached_configuration_is_quoted_fast(app, client):
    body = {"template": "wall_shelf", "params": {"width": 700}}
    assert answered(app, client, "POST", "/api/v1/quotes", json=body).status_code == 200
    started = time.perf_counter()
    for _ in range(5):
        assert answered(app, client, "POST", "/api/v1/quotes", json=body).status_code == 200
    assert (time.perf_counter() - started) / 5 < 0.5


def test_lead_time_grows_with_the_queue(app, client):
    body = {"template": "wall_shelf", "params": {"width": 700}}
    guess = app.config["DEFAULT_RENDER_SECONDS"]
    empty = answered(app, client, "POST", "/api/v1/quotes", json=body).get_json()["lead_time"]
    assert empty["queue_depth"] == 0 and empty["files_ready_in_s"] == pytest.approx(guess)  # its own render
    for _ in range(4):
        client.post("/api/v1/orders", json=order_body({"template": "wall_shelf", "params": unique_shelf()}))
    busy = answered(app, client, "POST", "/api/v1/quotes", json=body).get_json()["lead_time"]
    # each order's files, and the measurements that price it (its total), at the quote priority above them
    assert busy["queue_depth"] == 8 and busy["queue_ahead"] == {"render": 4, "quote": 4}
    quote_s = busy["mean_task_s"].get("quote", guess)  # the quote build this test measured, else the guess
    assert busy["files_ready_in_s"] == pytest.approx(5 * guess + 4 * quote_s, abs=0.1)
    assert busy["days"] >= busy["production_days"]


def test_average_render_time_comes_from_finished_renders(app, client):
    from .conftest import run_queue

    client.post("/api/v1/orders", json=order_body({"template": "wall_shelf", "params": unique_shelf()}))
    run_queue(app)
    average = services(app).generation.average_render_seconds()
    assert 0 < average < 60 and average != app.config["DEFAULT_RENDER_SECONDS"]


def test_invalid_quotes_list_every_problem(app, client):
    response = answered(app, client, "POST", "/api/v1/quotes",
                      json={"template": "wall_shelf", "params": {"width": 10, "depth": "x"},
                                                   "quantity": -1, "material": "gold", "colour": "red"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert {"params.width", "params.depth", "quantity", "material", "colour"} <= fields
    unknown = answered(app, client, "POST", "/api/v1/quotes", json={"template": "spaceship"})
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "template"
    assert answered(app, client, "POST", "/api/v1/quotes", json=["wall_shelf"]).status_code == 422


def test_a_configuration_the_kernel_cannot_build_is_422_with_its_reason(app, client, broken_template):
    response = answered(app, client, "POST", "/api/v1/quotes",
                      json={"template": broken_template, "params": {"size": 18}})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "params" and "BRep_API: command not done" in error["message"]


def test_a_quote_does_not_wait_long_for_a_busy_slicer(app, client, staff):
    """Other quotes hold PrusaSlicer: after QUOTE_SLICER_WAIT_SECONDS the part is priced by volume, saying why."""
    from web.orders import quotes

    from .test_manufacturing import add_printer

    assert add_printer(client, staff).status_code == 201
    services(app).config["QUOTE_SLICER_WAIT_SECONDS"] = 0.2
    with quotes._slicer:
        started = time.perf_counter()
        quote = answered(app, client, "POST", "/api/v1/quotes",
                          json={"template": "leg_cap", "material": "pla"}).get_json()
        waited = time.perf_counter() - started
    [part] = quote["parts"]
    assert {k: part["estimate"][k] for k in ("source", "reason")} == {
        "source": "volume rate", "reason": "the slicer was busy with other quotes for more than 0.2 s"}
    assert waited < 10
