"""Hostile text at every input, on SQLite and on a real PostgreSQL server: NUL and other control
characters are refused with a field error before any query (PostgreSQL answered 500 with a traceback
for a NUL in an order id, a token, a customer's name, a staff user name or a staff filter); quantities
are ASCII whole numbers within bounds (``²`` and a 5,000-digit string answered 500); a body on the
JSON API must be declared JSON (415)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web import create_app
from web.staff.auth import add_user

from .conftest import STAFF, order_body, services, test_config
from .live import postgres_database
from .test_pages import form_values, page

NUL = "\x00"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def backend_app(request: pytest.FixtureRequest, tmp_path: Path, cache_folder: Path) -> Iterator[Flask]:
    """The app on a SQLite file, or on a database of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        app = create_app(test_config(tmp_path, cache_folder))
        services(app).database.upgrade()
        yield app
        services(app).database.dispose()
        return
    with postgres_database() as url:
        app = create_app(test_config(tmp_path, cache_folder, DATABASE_URL=url))
        services(app).database.upgrade()
        yield app
        services(app).database.dispose()


@pytest.fixture
def hostile(backend_app: Flask) -> FlaskClient:
    add_user(services(backend_app).database, *STAFF)
    return backend_app.test_client()


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def refused(response: Any, field: str) -> None:
    """A 422 naming ``field`` and the control character, never a 500."""
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True)[:500])
    if response.is_json:
        problems = response.get_json()["errors"]
        assert any(p["field"] == field and "control character U+0000 NULL" in p["message"] for p in problems), problems
    else:
        text = response.get_data(as_text=True)
        assert f"{field}: contains the control character U+0000 NULL" in text, text[:800]


def test_nul_in_order_id_token_and_tracking_url(hostile):
    created = hostile.post("/api/v1/orders", json=order_body()).get_json()
    order_id, token = created["id"], created["token"]
    refused(hostile.get(f"/api/v1/orders/{order_id}%00"), "order_id")
    refused(hostile.get(f"/api/v1/orders/{order_id}", headers={"X-Order-Token": token + NUL}), "X-Order-Token")
    refused(hostile.get(f"/api/v1/orders/{order_id}?token=%00{token}"), "token")
    refused(hostile.get(f"/track/{order_id}?token=%00"), "token")
    refused(hostile.get(f"/track/%00{order_id}?token={token}"), "order_id")
    refused(hostile.get(f"/orders/{order_id}/confirmation?token=a%00b"), "token")
    refused(hostile.get(f"/api/v1/orders/{order_id}/items/1/files/a%00.stl?token={token}"), "filename")
    assert hostile.get(f"/api/v1/orders/{order_id}?token={token}").status_code == 200


def test_nul_in_customer_name_and_email(hostile):
    refused(hostile.post("/api/v1/orders", json=order_body(name="Ada" + NUL)), "customer.name")
    refused(hostile.post("/api/v1/orders", json=order_body(email="ada@exa" + NUL + "mple.com")), "customer.email")
    refused(hostile.post("/api/v1/orders", json=order_body(), headers={"Idempotency-Key": "k" + NUL}),
            "Idempotency-Key")
    checkout = form_values(page(hostile.get("/configure/leg_cap")), "configurator")
    refused(hostile.post("/checkout", data={**checkout, "item": "{}", "name": "Ada" + NUL, "email": "a@example.com"}),
            "name")


def test_nul_in_staff_user_name_and_filters(hostile):
    for headers in (basic("ada" + NUL, STAFF[1]), basic(STAFF[0], STAFF[1] + NUL)):
        refused(hostile.get("/api/v1/staff/orders", headers=headers), "Authorization")
    login = form_values(page(hostile.get("/staff/login")))
    refused(hostile.post("/staff/login", data={**login, "name": "ada" + NUL, "password": "x"}), "name")
    staff = basic(*STAFF)
    refused(hostile.get("/api/v1/staff/orders?state=%00", headers=staff), "state")
    refused(hostile.get("/api/v1/staff/jobs?machine=mk%00", headers=staff), "machine")
    refused(hostile.get("/api/v1/staff/orders/%00", headers=staff), "order_id")
    refused(hostile.post("/api/v1/staff/machines", json={"kind": "printer", "name": "mk" + NUL}, headers=staff),
            "name")
    hostile.post("/staff/login", data={**login, "name": STAFF[0], "password": STAFF[1]})
    for query in ("q=%00", "template=%00", "state=%00", "from=%00"):
        refused(hostile.get(f"/staff/?{query}"), query.split("=")[0])
    refused(hostile.get("/staff/orders/%00"), "order_id")


def test_other_control_characters_and_lone_surrogates(hostile):
    for character, name in (("\x1b", "U+001B"), ("\x7f", "U+007F DELETE"), ("\x85", "U+0085"), ("\n", "U+000A")):
        response = hostile.post("/api/v1/orders", json=order_body(name="Ada" + character))
        assert response.status_code == 422
        assert name in response.get_json()["errors"][0]["message"]
    response = hostile.post("/api/v1/orders", data='{"customer": {"name": "Ada\\ud800", "email": "a@example.com"}}',
                            content_type="application/json")
    assert response.status_code == 422 and "lone surrogate" in response.get_json()["errors"][0]["message"]


def test_a_template_text_field_refuses_control_characters_on_every_path(hostile):
    """The template's own text field type refuses them: JSON, the configurator form and the preview alike."""
    item = {"template": "name_plate", "params": {"text": "Ada" + NUL}, "material": "pla"}
    response = hostile.post("/api/v1/orders", json=order_body(item))
    assert response.status_code == 422
    problem = response.get_json()["errors"][0]
    assert problem["field"] == "items[0].params.text" and "control character U+0000 NULL" in problem["message"]
    preview = hostile.get("/configure/name_plate/preview?params.text=Ada%00")
    assert preview.status_code == 422 and "U+0000" in preview.get_json()["errors"][0]["message"]
    values = form_values(page(hostile.get("/configure/name_plate")), "configurator")
    form = hostile.post("/configure/name_plate", data={**values, "params.text": "Ada\x00"})
    assert form.status_code == 422 and "U+0000 NULL" in form.get_data(as_text=True)


# -- quantities -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["²", "١٢", "1_0", "9" * 5000, "-1", "0", "1e3", "12345678901234567890123"])
def test_quantities_are_ascii_whole_numbers_within_bounds(client, quantity):
    values = form_values(page(client.get("/configure/leg_cap")), "configurator")
    for response in (client.get("/configure/leg_cap/preview", query_string={"quantity": quantity}),
                     client.post("/configure/leg_cap", data={**values, "quantity": quantity})):
        assert response.status_code == 422, (quantity, response.status_code)
        text = response.get_data(as_text=True)
        assert "whole number from 1 to 1000" in text or "out of range; allowed: 1 to 1000" in text
    api = client.post("/api/v1/quotes", json={"template": "leg_cap", "quantity": quantity})
    assert api.status_code == 422 and api.get_json()["errors"][0]["field"] == "quantity"


def test_a_huge_json_quantity_is_a_400_not_a_500(client):
    response = client.post("/api/v1/quotes", data='{"template": "leg_cap", "quantity": ' + "9" * 5000 + "}",
                           content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.get_json()["errors"][0]["message"]


def test_staff_paging_takes_ascii_digits_only(client, staff):
    for offset in ("²", "9" * 5000, "١"):
        response = client.get("/api/v1/staff/orders", query_string={"offset": offset}, headers=staff)
        assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "offset"


# -- JSON bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_the_json_api_refuses_bodies_not_declared_json(client, staff, content_type):
    body = '{"template": "leg_cap"}'
    for path, headers in (("/api/v1/quotes", {}), ("/api/v1/orders", {}),
                          ("/api/v1/staff/machines", staff), ("/api/v1/staff/jobs/1/done", staff)):
        response = client.post(path, data=body, headers={**headers, "Content-Type": content_type})
        assert response.status_code == 415, (path, content_type)
        problem = response.get_json()["errors"][0]
        assert problem["field"] == "Content-Type" and "application/json" in problem["message"]
    assert client.post("/api/v1/quotes", json={"template": "leg_cap"}).status_code in (200, 202)  # JSON is taken


# -- name-plate text that could spoof what staff read ---------------------------------------------------


@pytest.mark.parametrize(("character", "named", "why"), [
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE", "changes the order in which the text is displayed"),
    ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE", "changes the order in which the text is displayed"),
    ("\u200f", "U+200F RIGHT-TO-LEFT MARK", "changes the order in which the text is displayed"),
    ("\u200b", "U+200B ZERO WIDTH SPACE", "takes no space and cannot be seen"),
    ("\u200d", "U+200D ZERO WIDTH JOINER", "takes no space and cannot be seen"),
    ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE", "takes no space and cannot be seen"),
])
def test_name_plate_text_refuses_bidirectional_and_zero_width_characters(client, character, named, why):
    item = {"template": "name_plate", "params": {"text": f"Room{character}12"}, "material": "pla"}
    for response in (client.post("/api/v1/quotes", json=item),
                     client.post("/api/v1/orders", json=order_body(item))):
        assert response.status_code == 422
        problem = response.get_json()["errors"][0]
        assert problem["field"].endswith("params.text")
        assert named in problem["message"] and why in problem["message"], problem
    preview = client.get("/configure/name_plate/preview", query_string={"params.text": f"Room{character}12"})
    assert preview.status_code == 422 and named in preview.get_json()["errors"][0]["message"]
