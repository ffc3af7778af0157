"""Quotes: the price follows the core's measured mass and the configured rates; the lead time follows the queue."""

from __future__ import annotations

import time

import pytest

import parametric
from parametric.materials import get_material

from .conftest import order_body, services, unique_width


def test_price_is_material_plus_machine_time_plus_setup(app, client, cache_folder):
    width = unique_width()
    response = client.post("/api/v1/quotes", json={"template": "wall_shelf", "params": {"width": width},
                                                   "quantity": 3, "material": "petg"})
    assert response.status_code == 200
    quote = response.get_json()
    manifest = parametric.render("wall_shelf", {"width": width}, formats=["stl"], material="petg",
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


def test_a_cnc_material_uses_the_cnc_rates(app, client):
    quote = client.post("/api/v1/quotes", json={"template": "wall_shelf", "material": "oak"}).get_json()
    assert quote["material"]["process"] == "cnc" and quote["quantity"] == 1
    assert quote["price"]["setup"] == app.config["SETUP_FEE"]["cnc"]
    assert quote["lead_time"]["production_days"] == app.config["PRODUCTION_DAYS"]["cnc"]


def test_a_cached_configuration_is_quoted_fast(client):
    body = {"template": "wall_shelf", "params": {"width": 700}}
    assert client.post("/api/v1/quotes", json=body).status_code == 200
    started = time.perf_counter()
    for _ in range(5):
        assert client.post("/api/v1/quotes", json=body).status_code == 200
    assert (time.perf_counter() - started) / 5 < 0.5


def test_lead_time_grows_with_the_queue(app, client):
    body = {"template": "wall_shelf", "params": {"width": 700}}
    guess = app.config["DEFAULT_RENDER_SECONDS"]
    empty = client.post("/api/v1/quotes", json=body).get_json()["lead_time"]
    assert empty["queue_depth"] == 0 and empty["files_ready_in_s"] == pytest.approx(guess)  # its own render
    for _ in range(4):
        client.post("/api/v1/orders", json=order_body({"template": "wall_shelf", "params": {"width": unique_width()}}))
    busy = client.post("/api/v1/quotes", json=body).get_json()["lead_time"]
    assert busy["queue_depth"] == 4
    assert busy["files_ready_in_s"] == pytest.approx(5 * guess, abs=0.1)
    assert busy["days"] >= busy["production_days"]


def test_average_render_time_comes_from_finished_renders(app, client):
    from .conftest import run_queue

    client.post("/api/v1/orders", json=order_body({"template": "wall_shelf", "params": {"width": unique_width()}}))
    run_queue(app)
    average = services(app).generation.average_render_seconds()
    assert 0 < average < 60 and average != app.config["DEFAULT_RENDER_SECONDS"]


def test_invalid_quotes_list_every_problem(client):
    response = client.post("/api/v1/quotes", json={"template": "wall_shelf", "params": {"width": 10, "depth": "x"},
                                                   "quantity": -1, "material": "gold", "colour": "red"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert {"params.width", "params.depth", "quantity", "material", "colour"} <= fields
    unknown = client.post("/api/v1/quotes", json={"template": "spaceship"})
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "template"
    assert client.post("/api/v1/quotes", json=["wall_shelf"]).status_code == 422


def test_a_configuration_the_kernel_cannot_build_is_422_with_its_reason(client, broken_template):
    response = client.post("/api/v1/quotes", json={"template": broken_template, "params": {"size": 18}})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "params" and "BRep_API: command not done" in error["message"]
