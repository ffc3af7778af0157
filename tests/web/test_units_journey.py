"""The customer's units end to end, without a browser: what they type is read by the core's one length parser
(a unit typed is never dropped), messages and limits are in their units and rounded for people, and the
order keeps the units so the checkout, confirmation, tracking page and job sheet speak them too."""

from __future__ import annotations

import lxml.html
import pytest

import parametric
from parametric.jobsheet import parameter_rows as sheet_rows
from parametric.units import format_length, length_range, to_mm

from .conftest import services
from .test_pages import csrf_token, error_for, form_values, page

BOOKCASE_IN = {"params.height": "6ft", "params.width": "31.5", "params.depth": "11", "params.shelf_count": "4",
               "params.sheet_thickness": "18", "quantity": "1", "material": "birch_plywood", "units": "in"}


def configure(client, template: str, values: dict[str, str]):
    token = csrf_token(page(client.get(f"/configure/{template}")))
    answered = client.post(f"/configure/{template}", data={**values, "csrf_token": token})
    if answered.status_code == 202:  # the price is worked out by a worker: run the queue, then ask again
        from .conftest import run_queue

        run_queue(client.application)
        answered = client.post(f"/configure/{template}", data={**values, "csrf_token": token})
    return answered


@pytest.mark.parametrize(("text", "mm"), [("6ft", 1828.8), ("5 ft 10 in", 1778.0), ("5'10\"", 1778.0),
                                          ("6 ft 1 1/2 in", 1866.9), ("31.5in", 800.1)])
def test_feet_and_inches_are_lengths(text, mm):
    assert to_mm(text) == pytest.approx(mm)


def test_limits_are_rounded_inward_for_people_and_big_numbers_are_plain():
    assert length_range(300, 2400, "in") == "11.9 to 94.4 in"  # never 11.811 to 94.4882, never beyond the limits
    assert length_range(300, 2400, "mm") == "300 to 2400 mm"
    assert length_range(300, 2400, "ft") == "11.9 in to 7 ft 10.4 in"
    assert format_length(2.53997e6, "mm") == "2539970 mm"
    assert format_length(1828.8, "in") == "72 in" and format_length(1828.8, "ft") == "6 ft"
    assert format_length(800.1, "in") == "31.5 in"


def test_a_message_in_inches_names_the_field_and_the_limits_in_inches(client):
    response = configure(client, "bookcase", {**BOOKCASE_IN, "params.height": "6"})
    assert response.status_code == 422
    message = error_for(page(response), "params.height")
    assert message == "6 in is too short: the height must be 11.9 to 94.4 in"
    huge = configure(client, "bookcase", {**BOOKCASE_IN, "units": "mm", "params.height": "2539970"})
    assert error_for(page(huge), "params.height") == "2539970 mm is too long: the height must be 300 to 2400 mm"
    api = client.post("/api/v1/quotes", json={"template": "bookcase", "params": {"height": "6in"}, "units": "in"})
    assert api.get_json()["errors"][0]["message"] == "6 in is too short: the height must be 11.9 to 94.4 in"


def test_a_unit_typed_in_the_box_is_kept_and_the_order_speaks_inches(app, client):
    document = page(client.get("/configure/bookcase?units=in"))
    height = document.get_element_by_id("f-height")
    assert height.get("type") == "text" and height.get("inputmode") == "text"  # a phone keyboard with letters
    assert height.get("value") == "70.866"  # 1800 mm, shown in inches
    assert "Allowed: 11.9 to 94.4 in." in document.get_element_by_id("h-height").text_content()
    checkout = configure(client, "bookcase", BOOKCASE_IN)
    assert checkout.status_code == 200, error_for(page(checkout), "params.height")
    summary = page(checkout)
    rows = {row.xpath("th")[0].text_content(): row.xpath("td")[0].text_content()
            for row in summary.xpath("//table[@class='parameters']/tbody/tr")}
    assert rows["Height"] == "72 in" and rows["Width"] == "31.5 in"  # "6ft" was not dropped to 6
    placed = client.post("/checkout", data={**form_values(summary), "name": "Ada", "email": "ada@example.com"})
    assert placed.status_code == 303, placed.get_data(as_text=True)[:500]
    confirmation = lxml.html.fromstring(client.get(placed.headers["Location"]).get_data(as_text=True))
    text = confirmation.text_content()
    assert "72 in" in text and "31.5 in" in text and "1828.8" not in text and "800.1" not in text
    order_id = placed.headers["Location"].split("/")[2]
    token = placed.headers["Location"].split("token=")[1]
    tracking = client.get(f"/track/{order_id}?token={token}").get_data(as_text=True)
    assert "72 in" in tracking and "1828.8" not in tracking
    described = client.get(f"/api/v1/orders/{order_id}?token={token}").get_json()
    assert described["units"] == "in" and described["items"][0]["params"]["height"] == 1828.8  # mm kept


def test_the_job_sheet_shows_the_customers_units_beside_the_millimetres():
    template = parametric.get_template("bookcase")
    params = template.resolve({"height": "6ft", "width": "31.5in"}).canonical()
    rows = {row["name"]: row["value"] for row in sheet_rows(template, params, "in")}
    assert rows["height"] == "72 in (1828.8 mm)" and rows["width"] == "31.5 in (800.1 mm)"
    assert {row["name"]: row["value"] for row in sheet_rows(template, params)}["height"] == "1828.8 mm"


def test_an_order_without_units_is_in_millimetres_and_unknown_units_are_refused(client):
    body = {"customer": {"name": "Ada", "email": "ada@example.com"}, "units": "furlongs",
            "items": [{"template": "leg_cap", "params": {}, "quantity": 1, "material": "pla"}]}
    refused = client.post("/api/v1/orders", json=body)
    assert refused.status_code == 422
    [problem] = refused.get_json()["errors"]
    assert problem["field"] == "units" and "mm (millimetres)" in problem["message"] and "'" not in problem["message"]
    del body["units"]
    placed = client.post("/api/v1/orders", json=body).get_json()
    assert client.get(f"/api/v1/orders/{placed['id']}?token={placed['token']}").get_json()["units"] == "mm"


def test_units_are_stored_with_the_order(app, client):
    from web.models import Order

    checkout = configure(client, "bookcase", {**BOOKCASE_IN, "units": "cm", "params.height": "180",
                                              "params.width": "80", "params.depth": "28"})
    placed = client.post("/checkout", data={**form_values(page(checkout)), "name": "Ada", "email": "a@example.com"})
    assert placed.status_code == 303
    with services(app).database.session() as session:
        [order] = session.query(Order).all()
        assert order.units == "cm" and order.items[0].params["height"] == 1800
