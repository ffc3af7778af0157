"""Sheet thicknesses offered are the ones the shop's routers stock (issue 12): the API schema says which, a quote
or order of another is refused naming the stocked ones, and the configurator greys the others out. Without a
router nothing is narrowed."""

from __future__ import annotations

from tests.parametric import conftest as tools

from .conftest import order_body
from .test_pages import page


def add_router(client, staff, stock):
    record = tools.router_record()
    record["stock"] = [{"material": m, "thickness_mm": t, "size_mm": [2500, 1250]} for m, t in stock]
    response = client.post("/api/v1/staff/machines", json=record, headers=staff)
    assert response.status_code == 201, response.get_json()


SHELF = {"template": "wall_shelf", "params": {"board_thickness": 30}, "quantity": 1, "material": "oak"}


def test_without_a_router_every_thickness_is_offered(client):
    schema = client.get("/api/v1/templates/wall_shelf").get_json()["schema"]
    assert "x-stocked" not in schema["properties"]["board_thickness"]
    response = client.post("/api/v1/quotes", json=SHELF)
    assert response.status_code in (200, 202), response.get_json()


def test_the_api_offers_and_accepts_only_stocked_thicknesses(client, staff):
    add_router(client, staff, [("oak", 18), ("oak", 22), ("birch_plywood", 18)])
    schema = client.get("/api/v1/templates/wall_shelf").get_json()["schema"]
    assert schema["properties"]["board_thickness"]["x-stocked"] == {
        "birch_plywood": [18], "oak": [18, 22], "pine": [], "mdf": []}
    refused = client.post("/api/v1/quotes", json={**SHELF, "units": "in"})
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == [{"field": "params.board_thickness", "message":
                                             "1.18 in Solid oak is not stocked; the shop's routers have Solid oak "
                                             "in 0.71 in, 0.87 in"}]
    ordered = client.post("/api/v1/orders", json=order_body(SHELF))
    assert ordered.status_code == 422
    assert [e["field"] for e in ordered.get_json()["errors"]] == ["items[0].params.board_thickness"]
    pine = client.post("/api/v1/quotes", json={**SHELF, "params": {}, "material": "pine"})
    assert pine.status_code == 422 and "stock no Pine" in pine.get_json()["errors"][0]["message"]
    stocked = client.post("/api/v1/quotes", json={**SHELF, "params": {"board_thickness": 22}})
    assert stocked.status_code in (200, 202), stocked.get_json()


def test_the_configurator_greys_out_thicknesses_not_stocked_in_the_material(client, staff):
    add_router(client, staff, [("oak", 18), ("oak", 22), ("birch_plywood", 18)])
    form = page(client.get("/configure/wall_shelf?params.width=800&material=oak"))
    options = form.xpath("//select[@name='params.board_thickness']/option")
    assert {o.get("value"): o.get("disabled") is None for o in options} == {
        "12": False, "15": False, "18": True, "19": False, "22": True, "25": False, "30": False}
    by_value = {o.get("value"): o.get("data-stocked-in").split() for o in options}
    assert by_value["22"] == ["oak"]  # what the page's script narrows to when the material changes
    assert set(by_value["18"]) >= {"birch_plywood", "oak"}  # a PLA shelf's board is birch plywood
    assert form.xpath("//p[@id='h-board_thickness']/span[@data-stock-note]")
