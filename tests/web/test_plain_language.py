"""Every message a customer reads is plain language: a walk over every field of every template with empty,
non-numeric and out-of-range input, through the shop's form (the preview the configurator asks, which is the
form's own validation) and the API, in millimetres and inches; styled error pages with a way back; tracking in
workshop words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import lxml.html
import pytest

import parametric
from parametric.units import format_number
from web.models import Job

from .conftest import services, unique_shelf

DEVELOPER_WORDING = [
    (re.compile(r"(?<![A-Za-z])'[^']*'(?![A-Za-z])"), "repr quotes"),
    (re.compile(r"\b(str|int|float|bool|NoneType|dict|list|tuple|None)\b"), "a Python type name"),
    (re.compile(r"Input should|value_error|pydantic|Traceback|literal_error|\bparams\.", re.I), "framework words"),
    (re.compile(r"\d[eE][+-]?\d"), "a number in exponent form"),
]


def cases() -> Iterator[tuple[str, str, str, Any]]:
    """(template, field, what, value in the customer's units as typed) for every field of every template."""
    for template in parametric.templates():
        model = template.Params
        for name in model.model_fields:
            meta = model.field_help(name)
            if isinstance(meta["default"], bool):
                continue  # a switch: on or off, nothing to type
            if meta["max_length"] is not None:
                yield template.id, name, "too long", "x" * (meta["max_length"] + 5)
                continue
            if meta["default"] is not None:  # an optional field may be left empty
                yield template.id, name, "empty", ""
            yield template.id, name, "not a number", "twelve"
            if meta["maximum"] is not None:
                yield template.id, name, "out of range", meta["maximum"] * 40 + 1
            elif "choices" in meta:
                yield template.id, name, "not a choice", "99999"


CASES = list(cases())


def plain(message: str, template: str, name: str, units: str) -> list[str]:
    """What is wrong with a customer's message, in words (empty when it is plain)."""
    problems = [f"{why}: {message!r}" for pattern, why in DEVELOPER_WORDING if pattern.search(message)]
    model = parametric.get_template(template).Params
    label = model.label(name)
    if label.lower() not in message.lower():
        problems.append(f"does not name the field ({label}): {message!r}")
    meta = model.field_help(name)
    if meta.get("unit") == "mm" and "choices" not in meta and meta["max_length"] is None:
        unit = {"mm": " mm", "in": " in"}[units]
        if unit not in message:
            problems.append(f"does not say what is allowed in {units}: {message!r}")
        if units == "in" and " mm" in message:
            problems.append(f"speaks mm to a customer who chose inches: {message!r}")
    return problems


def typed(value: Any, name: str, template: str, units: str) -> str:
    """The out-of-range number as the customer would type it in their units (lengths in inches)."""
    if isinstance(value, str):
        return value
    unit = parametric.get_template(template).Params.field_help(name).get("unit")
    return format_number(value / 25.4 if units == "in" and unit == "mm" else value, 3)


@pytest.mark.parametrize("units", ["mm", "in"])
def test_every_field_of_every_template_answers_the_form_in_plain_words(client, units):
    failures = []
    for template, name, what, value in CASES:
        shown = typed(value, name, template, units)
        response = client.get(f"/configure/{template}/preview", query_string={f"params.{name}": shown,
                                                                              "units": units})
        if what == "empty" and response.status_code == 200:
            continue  # an empty optional field is worked out by the template
        errors = {e["field"]: e["message"] for e in response.get_json().get("errors", [])}
        message = errors.get(f"params.{name}")
        if response.status_code != 422 or message is None:
            failures.append(f"{template}.{name} {what} {shown!r}: no message for the field ({errors})")
            continue
        failures += [f"{template}.{name} {what}: {p}" for p in plain(message, template, name, units)]
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} in all)"


@pytest.mark.parametrize("units", ["mm", "in"])
def test_every_field_of_every_template_answers_the_api_in_plain_words(client, units):
    failures = []
    for template, name, what, value in CASES:
        if what == "empty":
            continue  # JSON leaves an optional field out rather than sending it empty
        shown = typed(value, name, template, units)
        meta = parametric.get_template(template).Params.field_help(name)
        if what == "out of range" and meta.get("unit") == "mm":
            shown = f"{shown}{units}"
        response = client.post("/api/v1/quotes", json={"template": template, "params": {name: shown}, "units": units})
        errors = {e["field"]: e["message"] for e in response.get_json().get("errors", [])}
        message = errors.get(f"params.{name}")
        if response.status_code != 422 or message is None:
            failures.append(f"{template}.{name} {what} {shown!r}: no message for the field ({errors})")
            continue
        failures += [f"{template}.{name} {what}: {p}" for p in plain(message, template, name, units)]
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} in all)"


def test_the_form_help_is_plain_words(client):
    for template in parametric.templates():
        text = lxml.html.fromstring(client.get(f"/configure/{template.id}").get_data(as_text=True)).text_content()
        assert "text of" not in text and "0 to 24 characters" not in text, template.id  # "at most 24 characters"
        assert not re.search(r"\d[eE][+-]?\d|\d\.\d{4,}", text), template.id


# -- error pages --------------------------------------------------------------------------------------------


def test_an_unknown_product_is_a_styled_404_with_a_way_back(client):
    response = client.get("/configure/no_such_shelf")
    assert response.status_code == 404 and response.mimetype == "text/html"
    document = lxml.html.fromstring(response.get_data(as_text=True))
    assert document.xpath("//link[@rel='stylesheet']"), "not in the shop's look"
    assert document.xpath("//h1")[0].text_content() == "We could not find that page"
    assert "no product called “no_such_shelf”" in document.text_content()
    assert document.xpath("//main//a[@href='/']"), "no way back to the catalog"
    assert "'" not in document.xpath("//main")[0].text_content().replace("’", "")


def test_a_mistyped_tracking_link_says_what_to_do(client):
    placed = client.post("/api/v1/orders", json={"customer": {"name": "Ada", "email": "ada@example.com"},
                                                 "items": [{"template": "leg_cap", "params": {}, "quantity": 1,
                                                            "material": "pla"}]}).get_json()
    response = client.get(f"/track/{placed['id']}?token={placed['token'][:-3]}")
    assert response.status_code == 404
    document = lxml.html.fromstring(response.get_data(as_text=True))
    assert "tracking link from your order confirmation" in document.text_content()
    assert document.xpath("//main//a[@href='/']")
    nowhere = client.get("/no/such/page")
    assert nowhere.status_code == 404 and "Back to the catalog" in nowhere.get_data(as_text=True)
    assert client.get("/api/v1/nowhere").mimetype == "application/json"  # the API keeps its JSON errors


def test_a_bug_is_a_styled_500_page(app, client):
    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("a bug")

    response = client.get("/boom")
    assert response.status_code == 500
    text = lxml.html.fromstring(response.get_data(as_text=True)).text_content()
    assert "Something went wrong on our side" in text and "a bug" not in text and "Back to the catalog" in text


# -- tracking in workshop words -----------------------------------------------------------------------------


def test_tracking_says_what_the_workshop_is_doing(app, client, staff):
    line = {"template": "wall_shelf", "params": unique_shelf(), "quantity": 1, "material": "birch_plywood"}
    placed = client.post("/api/v1/orders", json={"customer": {"name": "Ada", "email": "ada@example.com"},
                                                 "items": [line]}).get_json()
    url = f"/track/{placed['id']}?token={placed['token']}"
    first = lxml.html.fromstring(client.get(url).get_data(as_text=True)).text_content()
    assert "Birch plywood" in first and "birch_plywood" not in first
    assert "files waiting to be made" in first or "files being made" in first
    database = services(app).database
    with database.transaction() as session:
        from web.models import OrderItem

        item = session.query(OrderItem).one()
        item.state = "ready"
        item_id = item.id
    with database.transaction() as session:
        board = Job(item_id=item_id, part="board", kind="cnc", machine="shop-router", state="printing",
                    estimates={"machining_time_s": 4140.0}, files={})
        bracket = Job(item_id=item_id, part="bracket", kind="fdm", machine="mk3", state="ready", estimates={},
                      files={})
        session.add_all([board, bracket])
        session.flush()
        board_id, bracket_id = board.id, bracket.id
    text = lxml.html.fromstring(client.get(url).get_data(as_text=True)).text_content()
    assert "board: being cut" in text and "about 1 h 09 min of cutting" in text
    assert "bracket: waiting for a machine" in text
    status = lxml.html.fromstring(client.get(url).get_data(as_text=True)).get_element_by_id("order-status")
    assert status.text_content() == "being cut" and "state-ready" not in status.get("class")
    cancelled = client.post(f"/api/v1/staff/jobs/{bracket_id}/cancel", headers=staff,
                            json={"reason": "the bracket is out of stock; we will refund it"})
    assert cancelled.status_code == 200
    from web import jobs

    jobs.transition(database, board_id, "done")
    text = lxml.html.fromstring(client.get(url).get_data(as_text=True)).text_content()
    assert "bracket: cancelled: the bracket is out of stock; we will refund it" in text
    assert "board: cut" in text and "made: ready to ship" in text
    order = client.get(f"/api/v1/orders/{placed['id']}?token={placed['token']}").get_json()
    assert order["label"] == "made: ready to ship" and order["status"] == "ready"  # the API keeps its states
