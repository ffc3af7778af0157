"""The browser pages through Flask's test client: catalog, configurator, checkout, tracking, staff dashboard.

CSRF protection is on (as in production): each POST carries the token the page gave, and a
POST without one is refused. Ordering needs no JavaScript: a plain form goes through
configurator → checkout → confirmation, and the worker's queue makes the files.
"""

from __future__ import annotations

import io
import struct
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

import parametric
from web import create_app
from web.models import Order, OrderItem
from web.orders import tokens
from web.shop.forms import form_fields

from .conftest import STAFF, answered, order_body, run_queue, services, test_config

SCRIPT = "<script>alert(1)</script>"


def page(response: Any) -> Any:
    assert response.mimetype == "text/html", response.data[:200]
    return lxml.html.fromstring(response.get_data(as_text=True))


def csrf_token(document: Any) -> str:
    return document.xpath("//input[@name='csrf_token']/@value")[0]


def form_values(document: Any, form_id: str | None = None) -> dict[str, str]:
    """What a browser would submit from the page's (first, or ``form_id``) form, as it stands."""
    form = document.get_element_by_id(form_id) if form_id else document.forms[0]
    values = {}
    for element in form.inputs:
        if element.name is None:
            continue
        if element.tag == "input" and element.type in ("checkbox", "radio"):
            if element.checked:
                values[element.name] = element.value or "on"
        elif element.tag == "select":
            values[element.name] = element.value
        else:
            values[element.name] = element.value or ""
    return values


def error_for(document: Any, name: str) -> str:
    slots = document.xpath(f"//*[@data-error-for='{name}']")
    assert slots, f"no error slot for {name}"
    return "" if slots[0].get("hidden") is not None else slots[0].text_content().strip()


def unique_shelf_width() -> float:
    from .conftest import unique_width

    return unique_width()


def through_preparing(client: FlaskClient, response: Any, rounds: int = 5) -> Any:
    """Follow a "preparing" page (202) as a browser without JavaScript does: its refresh, after the workers (the
    real queue, run here) have done their part."""
    from .conftest import run_queue

    for _ in range(rounds):
        if response.status_code != 202:
            return response
        refresh = page(response).xpath("//meta[@http-equiv='refresh']/@content")
        assert refresh and response.headers["Retry-After"], "a preparing page refreshes itself and says when"
        target = refresh[0].split("url=", 1)[1]
        run_queue(client.application)
        response = client.get(target)
    raise AssertionError("still preparing")


def settled(app: Any, rounds: int = 400) -> bool:
    """Run the queue until the catalog has every from-price it asked for."""
    from .conftest import run_queue

    catalog = app.extensions["parametric_catalog"]
    for _ in range(rounds):
        run_queue(app, limit=200)
        if catalog.settle(timeout=0.5):
            return True
    return False


def place_order_without_javascript(client: FlaskClient, template_id: str, changes: dict[str, str],
                                   name: str = "Grace Hopper", email: str = "grace@example.com") -> tuple[Any, str]:
    """Configure, check out and confirm with plain form posts; returns (confirmation page, tracking URL)."""
    configurator = page(client.get(f"/configure/{template_id}"))
    values = {**form_values(configurator, "configurator"), **changes}
    checkout = through_preparing(client, client.post(f"/configure/{template_id}", data=values))
    assert checkout.status_code == 200, checkout.get_data(as_text=True)[:2000]
    checkout_page = page(checkout)
    submitted = {**form_values(checkout_page, None), "name": name, "email": email}
    placed = client.post("/checkout", data=submitted)
    assert placed.status_code == 303, placed.get_data(as_text=True)[:2000]
    confirmation = client.get(placed.headers["Location"])
    assert confirmation.status_code == 200
    document = page(confirmation)
    tracking = document.get_element_by_id("tracking-link").get("href")
    return document, tracking


# -- catalog -------------------------------------------------------------------------------------------


def test_catalog_shows_every_template_with_picture_family_and_from_price(app, client):
    first = client.get("/")  # the prices are worked out in the background: the page does not wait for them
    assert first.status_code == 200 and "priced when configured" in first.get_data(as_text=True)
    assert settled(app)
    response = client.get("/")
    assert response.status_code == 200
    document = page(response)
    cards = document.xpath("//li[contains(@class, 'card')]")
    assert len(cards) == len(parametric.templates())
    for template, card in zip(sorted(parametric.templates(), key=lambda t: (t.family, t.id)), cards, strict=True):
        text = card.text_content()
        assert template.name in text and template.description in text and template.family in text
        assert card.xpath(".//img/@src") == [f"/catalog/{template.id}.png"]
        assert f"/configure/{template.id}" in card.xpath(".//a/@href")
        # The from-price is the cheapest quote of the default and the presets (asked of the API here).
        totals = []
        for preset in (None, *template.presets):
            line = {"template": template.id, "quantity": 1}
            if preset:
                line["preset"] = preset
                if template.presets[preset].material:
                    line["material"] = template.presets[preset].material
            quoted = answered(app, client, "POST", "/api/v1/quotes", json=line)
            assert quoted.status_code == 200, quoted.get_json()
            totals.append(quoted.get_json()["price"]["total"])
        assert f"from {min(totals):.2f} EUR" in " ".join(text.split())


@pytest.mark.integration
def test_catalog_from_prices_follow_the_machines_the_shop_has(app, client, staff):
    """With a printer set up, a printed product's from-price is its cheapest PrusaSlicer-based quote, as the
    configurator will quote it; adding a machine makes the catalog price it again."""
    from tests.parametric.conftest import require

    from .test_manufacturing import PRINTER

    require("prusa-slicer", "prusa-slicer")
    client.get("/")
    catalog = app.extensions["parametric_catalog"]
    template = parametric.get_template("leg_cap")
    assert settled(app)
    by_volume = catalog.from_price(template)
    printer = {**PRINTER, "materials": ["pla", "petg", "tpu"]}
    assert client.post("/api/v1/staff/machines", json=printer, headers=staff).status_code == 201
    assert catalog.from_price(template) is None  # a new fleet: worked out again, in the background
    assert settled(app)
    sliced = catalog.from_price(template)
    totals = []
    for preset in (None, *template.presets):
        line = {"template": "leg_cap", "quantity": 1, **({"preset": preset} if preset else {})}
        if preset and template.presets[preset].material:
            line["material"] = template.presets[preset].material
        quoted = answered(app, client, "POST", "/api/v1/quotes", json=line).get_json()
        totals.append((quoted["price"]["total"], quoted["parts"][0]["estimate"]["source"]))
    assert sliced.total == min(total for total, _ in totals) != by_volume.total
    assert {source for _, source in totals} == {"prusaslicer"}


def test_catalog_picture_is_the_default_configuration_drawn_once(client, app):
    preparing = client.get("/catalog/wall_shelf.png")  # drawn by a worker: a placeholder until then
    assert preparing.status_code == 202 and preparing.mimetype == "image/svg+xml" and preparing.headers["Retry-After"]
    first = answered(app, client, "GET", "/catalog/wall_shelf.png")
    assert first.status_code == 200 and first.mimetype == "image/png"
    picture = Image.open(io.BytesIO(first.data)).convert("RGB")
    assert picture.size == (480, 360)
    assert len(set(picture.getdata())) > 200  # shaded model, not a blank frame
    drawn = list((services(app).generation.output_folder / "catalog").glob("*.png"))
    assert len(drawn) == 1 and drawn[0].read_bytes() == first.data
    assert client.get("/catalog/wall_shelf.png").data == first.data
    assert client.get("/catalog/no_such_thing.png").status_code == 404


# -- the configurator, generated from the parameter model ---------------------------------------------


@pytest.mark.parametrize("template", parametric.templates(), ids=lambda t: t.id)
def test_configurator_form_is_generated_from_the_parameter_model(client, template):
    response = client.get(f"/configure/{template.id}")
    assert response.status_code == 200
    document = page(response)
    form = document.get_element_by_id("configurator")
    assert form.get("method") == "post" and form.get("action") == f"/configure/{template.id}"
    legends = [legend.text_content().strip() for legend in form.xpath(".//fieldset[@class='group']/legend")]
    declared = [g for g in template.groups if any(f.group == g for f in form_fields(template))]
    assert legends[:len(declared)] == declared and legends[-1] == "Order"
    names = [element.get("name") for element in form.xpath(".//*[starts-with(@name, 'params.')]")]
    assert names == [f"params.{f.name}" for f in form_fields(template)]
    for name in template.Params.model_fields:
        meta = template.Params.field_help(name)
        control = form.xpath(f".//*[@name='params.{name}']")[0]
        label = form.xpath(f".//label[@for='{control.get('id')}']")
        assert label, f"{name} has no label"
        help_text = " ".join(document.get_element_by_id(f"h-{name}").text_content().split())
        assert " ".join(meta["description"].split()) in help_text
        if "choices" in meta:
            assert control.tag == "select"
            assert [o.get("value") for o in control.xpath("option")] == [str(c) for c in meta["choices"]]
        elif isinstance(meta["default"], bool):
            assert control.get("type") == "checkbox" and (control.get("checked") is not None) == meta["default"]
        elif meta["max_length"] is not None:
            assert control.get("type") == "text" and control.get("maxlength") == str(meta["max_length"])
        else:  # a text box, so nothing typed is dropped; the phone keyboard has letters for a length's unit
            assert control.get("type") == "text"
            assert control.get("inputmode") == ("text" if meta.get("unit") == "mm" else
                                                "numeric" if meta.get("unit") == "count" else "decimal")
            assert template.Params.allowed(name) in help_text
            if meta.get("unit") == "mm":
                assert control.getparent().xpath("span[@class='unit']")[0].text_content().strip() == "mm"
            if meta["default"] is None:
                assert control.get("value") in (None, "") and control.get("placeholder").startswith("auto")
            else:
                assert float(control.get("value")) == pytest.approx(float(meta["default"]))
    for element in form.xpath(".//input[not(@type='hidden')] | .//select"):
        has_label = element.get("id") and form.xpath(f".//label[@for='{element.get('id')}']")
        assert has_label or element.xpath("ancestor::label"), lxml.html.tostring(element)
    assert document.xpath("//script[@type='importmap']") and "/static/vendor/three/" in response.get_data(as_text=True)
    assert bool(document.xpath("//*[@id='size-picker']")) == (template.family == "footwear")


def test_units_switch_and_presets_fill_the_form(client):
    inches = page(client.get("/configure/wall_shelf?units=in"))
    width = inches.xpath("//input[@name='params.width']")[0]
    assert width.get("value") == "31.496" and width.get("type") == "text" and width.get("inputmode") == "text"
    assert width.getparent().xpath("span")[0].text_content() == "in"
    assert "Allowed: 11.9 to 59 in" in inches.get_element_by_id("h-width").text_content()  # rounded inward
    assert inches.xpath("//input[@name='units'][@value='in']/@checked")
    preset = parametric.get_template("wall_shelf").presets["spice-rack"]
    filled = form_values(page(client.get("/configure/wall_shelf?preset=spice-rack")), "configurator")
    resolved = parametric.get_template("wall_shelf").resolve(dict(preset.params)).canonical()
    for name in preset.params:
        assert float(filled[f"params.{name}"]) == pytest.approx(resolved[name])


def test_shoe_size_table_endpoint(client):
    from templates_models.footwear.sizing import size_table

    systems = {s["id"]: s for s in client.get("/shoe-sizes.json").get_json()["systems"]}
    assert list(systems) == ["EU", "US-M", "US-W", "UK"]
    eu42 = next(s for s in systems["EU"]["sizes"] if s["size"] == 42)
    assert eu42["foot_length_mm"] == size_table()[("EU", 42.0)]
    assert systems["US-W"]["label"] == "US W"


def test_preview_validates_renders_and_answers_from_the_cache(app, client):
    width = 1010 + 10 * (round(unique_shelf_width()) % 48)  # on the 10 mm step, not built before in this run
    query = {"params.width": f"{width}", "params.depth": "185", "quantity": "1", "material": "pla"}
    first = client.get("/configure/wall_shelf/preview", query_string=query)
    assert first.status_code == 202, first.get_json()  # a new configuration: a worker builds it
    assert first.get_json()["state"] == "preparing" and int(first.headers["Retry-After"]) >= 1
    run_queue(app)
    ready = client.get("/configure/wall_shelf/preview", query_string=query)
    assert ready.status_code == 200, ready.get_json()
    shown = ready.get_json()
    assert shown["state"] == "ready" and shown["bbox_mm"][:2] == [pytest.approx(width), 185]
    assert shown["quote_request"]["params"]["width"] == pytest.approx(width) and shown["snapped"] == {}
    glb = client.get(shown["glb"])
    assert glb.status_code == 200 and glb.data[:4] == b"glTF" and "immutable" in glb.headers["Cache-Control"]
    again = client.get("/configure/wall_shelf/preview", query_string=query).get_json()
    assert again["cache_hit"] is True and again["glb"] == shown["glb"]
    quoted = answered(app, client, "POST", "/api/v1/quotes", json=shown["quote_request"])
    assert quoted.status_code == 200
    in_inches = {**query, "params.width": "30", "params.depth": "8", "units": "in"}
    inches = answered(app, client, "GET", "/configure/wall_shelf/preview", query_string=in_inches).get_json()
    assert inches["bbox_mm"][0] == pytest.approx(762)  # 30 in, kept exact: inches cannot land on a 10 mm step
    assert inches["snapped"] == {}
    wrong = client.get("/configure/wall_shelf/preview", query_string={**query, "params.width": "5000",
                                                                       "quantity": "0"})
    assert wrong.status_code == 422
    errors = {e["field"]: e["message"] for e in wrong.get_json()["errors"]}
    assert errors["params.width"] == "5000 mm is too long: the width must be 300 to 1500 mm"
    assert "quantity" in errors
    assert client.get("/preview/" + "0" * 64 + "/x.glb").status_code == 404
    assert client.get("/preview/../../etc/passwd").status_code == 404


# -- ordering without JavaScript -----------------------------------------------------------------------


def test_invalid_value_shows_the_form_again_with_the_message_and_the_values(client):
    configurator = page(client.get("/configure/wall_shelf"))
    values = {**form_values(configurator, "configurator"), "params.width": "5000", "params.depth": "230",
              "params.bracket_count": "7", "params.hole_pitch": "300"}
    response = client.post("/configure/wall_shelf", data=values)
    assert response.status_code == 422
    document = page(response)
    assert error_for(document, "params.width") == "5000 mm is too long: the width must be 300 to 1500 mm"
    assert document.xpath("//input[@name='params.width']/@value") == ["5000"]
    assert document.xpath("//input[@name='params.depth']/@value") == ["230"]
    assert document.xpath("//input[@name='params.width']/@aria-invalid") == ["true"]
    assert error_for(document, "params.depth") == ""
    # A rule across fields is shown next to its first field.
    rule = client.post("/configure/wall_shelf", data={**values, "params.width": "400"})
    assert rule.status_code == 422
    assert "separate screw holes" in error_for(page(rule), "params.bracket_count")


def test_order_without_javascript_from_form_to_files(client, app):
    width = unique_shelf_width()
    confirmation, tracking = place_order_without_javascript(
        client, "wall_shelf", {"params.width": str(width), "quantity": "2", "material": "petg"})
    assert "is placed" in confirmation.text_content()
    parts = urlsplit(tracking)
    order_id = parts.path.rsplit("/", 1)[-1]
    with services(app).database.session() as session:
        order = session.scalar(select(Order).where(Order.id == order_id))
        item = session.scalar(select(OrderItem).where(OrderItem.order_id == order_id))
    assert order.customer_name == "Grace Hopper" and tokens.matches(order.token_hash, parse_qs(parts.query)["token"][0])
    assert item.params["width"] == round(width / 10) * 10  # the configurator snaps to the field's 10 mm step
    assert item.quantity == 2 and item.material == "petg"
    track = page(client.get(f"{parts.path}?{parts.query}"))
    assert track.xpath("//*[@data-role='state']")[0].text_content() == "files waiting to be made"
    assert track.xpath("//noscript/meta[@http-equiv='refresh']")  # without JavaScript the page reloads
    run_queue(app)
    ready = page(client.get(f"{parts.path}?{parts.query}"))
    assert ready.get_element_by_id("order-status").text_content() == "files checked"  # not made yet
    links = ready.xpath("//ul[@class='files']//a/@href")
    assert {href.rsplit("?", 1)[0].rsplit(".", 1)[-1] for href in links} == {"step", "stl", "3mf", "svg"}
    stl = client.get(next(href for href in links if ".stl" in href))
    assert stl.status_code == 200
    (triangles,) = struct.unpack("<I", stl.data[80:84])
    assert triangles > 100 and len(stl.data) == 84 + 50 * triangles
    assert client.get(f"{parts.path}?token=wrong").status_code == 404
    assert client.get(parts.path).status_code == 404


def test_inches_from_the_form_are_ordered_in_millimetres(client):
    configurator = page(client.get("/configure/wall_shelf?units=in"))
    values = {**form_values(configurator, "configurator"), "params.width": "30.25"}
    checkout = through_preparing(client, client.post("/configure/wall_shelf", data=values))
    assert checkout.status_code == 200
    text = " ".join(page(checkout).text_content().split())
    # typed in inches, kept exact (not snapped to the width's 10 mm step) and shown in the customer's inches
    assert "Width 30.25 in" in text and "Total" in text
    assert '"width": 768.35' in page(checkout).xpath("//input[@name='item']/@value")[0]  # ordered in mm


def test_checkout_shows_customer_errors_and_keeps_the_values(client):
    configurator = page(client.get("/configure/leg_cap"))
    checkout = page(through_preparing(client, client.post("/configure/leg_cap",
                                                          data=form_values(configurator, "configurator"))))
    values = {**form_values(checkout), "name": "Ada", "email": "not an email"}
    response = client.post("/checkout", data=values)
    assert response.status_code == 422
    document = page(response)
    assert "not an email address" in document.get_element_by_id("e-c-email").text_content()
    assert document.xpath("//input[@name='name']/@value") == ["Ada"]
    # The same checkout form placed twice makes one order (its idempotency key).
    fixed = {**form_values(document), "email": "ada@example.com"}
    first, second = client.post("/checkout", data=fixed), client.post("/checkout", data=fixed)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]


def test_forms_are_refused_without_the_csrf_token(tmp_path, cache_folder):
    app = create_app(test_config(tmp_path, cache_folder, WTF_CSRF_ENABLED=True))
    services(app).database.upgrade()
    client = app.test_client()
    values = form_values(page(client.get("/configure/leg_cap")), "configurator")
    without = {name: value for name, value in values.items() if name != "csrf_token"}
    for url, data in (("/configure/leg_cap", without), ("/checkout", {"item": "{}", "name": "x", "email": "y"}),
                      ("/staff/login", {"name": STAFF[0], "password": STAFF[1]}), ("/staff/logout", {}),
                      ("/staff/items/1/retry", {}), ("/configure/leg_cap", {**without, "csrf_token": "forged"})):
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "security token" in response.get_data(as_text=True)
    assert client.post("/configure/leg_cap", data=values).status_code in (200, 202)  # accepted (202: price coming)
    assert client.post("/api/v1/quotes", json={"template": "leg_cap"}).status_code in (200, 202)  # no cookies
    services(app).database.dispose()


# -- escaping ----------------------------------------------------------------------------------------


def login(client: FlaskClient, app: Flask, next_url: str = "") -> Any:
    from web.staff.auth import add_user

    add_user(services(app).database, *STAFF)
    form = page(client.get("/staff/login" + (f"?next={next_url}" if next_url else "")))
    return client.post("/staff/login", data={**form_values(form), "name": STAFF[0], "password": STAFF[1]})


def test_customer_text_is_escaped_on_the_tracking_page_and_the_dashboard(client, app):
    body = order_body({"template": "leg_cap", "params": {"leg_diameter": 31.3}, "material": "pla"},
                      name=SCRIPT, email="x@example.com")
    created = client.post("/api/v1/orders", json=body).get_json()
    track = client.get(f"/track/{created['id']}?token={created['token']}").get_data(as_text=True)
    assert SCRIPT not in track and "&lt;script&gt;alert(1)&lt;/script&gt;" in track
    login(client, app)
    listing = client.get("/staff/").get_data(as_text=True)
    detail = client.get(f"/staff/orders/{created['id']}").get_data(as_text=True)
    for html in (listing, detail):
        assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    search = client.get("/staff/", query_string={"q": SCRIPT}).get_data(as_text=True)
    assert SCRIPT not in search and created["id"][:12] in search  # found by its name, shown escaped
    headers = client.get(f"/track/{created['id']}?token={created['token']}").headers
    assert "Content-Security-Policy" in headers and "no-store" in headers["Cache-Control"]


# -- the staff dashboard -------------------------------------------------------------------------------


def test_staff_pages_need_a_login(client, app):
    for url in ("/staff/", "/staff/orders/" + "0" * 32):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login?next=")
    form = page(client.get("/staff/login"))
    for url in ("/staff/items/1/retry", "/staff/items/1/cancel", "/staff/orders/abc/cancel",
                "/staff/items/99999999999999999999/retry"):
        response = client.post(url, data={"csrf_token": csrf_token(form)})
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    wrong = client.post("/staff/login", data={**form_values(form), "name": STAFF[0], "password": "wrong"})
    assert wrong.status_code == 401 and "wrong password" in wrong.get_data(as_text=True)
    response = login(client, app, "/staff/?state=failed")
    assert response.status_code == 303 and response.headers["Location"] == "/staff/?state=failed"
    assert client.get("/staff/").status_code == 200
    evil = client.post("/staff/login", data={**form_values(page(client.get("/staff/login"))), "name": STAFF[0],
                                             "password": STAFF[1], "next": "//evil.example/"})
    assert evil.headers["Location"] == "/staff/"
    logout_form = page(client.get("/staff/"))
    assert client.post("/staff/logout", data={"csrf_token": csrf_token(logout_form)}).status_code == 303
    assert client.get("/staff/").status_code == 302


def test_dashboard_filters_and_search(client, app):
    first = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"leg_diameter": 33.1}}, name="Katherine Johnson",
        email="kj@nasa.example")).get_json()
    second = client.post("/api/v1/orders", json=order_body(
        {"template": "table_leg", "params": {"height": 151}}, name="Dorothy Vaughan",
        email="dv@nasa.example")).get_json()
    login(client, app)

    def listed(**query: str) -> set[str]:
        response = client.get("/staff/", query_string=query)
        assert response.status_code == 200
        return {href.rsplit("/", 1)[-1] for href in page(response).xpath("//table[@class='orders']//a/@href")}

    both = {first["id"], second["id"]}
    assert listed() == both
    assert listed(q="katherine") == {first["id"]}
    assert listed(q="dv@nasa") == {second["id"]}
    assert listed(q=second["id"][:10]) == {second["id"]}
    assert listed(q="100%_") == set()
    assert listed(template="table_leg") == {second["id"]}
    assert listed(state="queued") == both and listed(state="ready") == set()
    today = first["created_at"][:10]
    assert listed(**{"from": today, "to": today}) == both
    assert listed(**{"from": "2999-01-01"}) == set()
    assert "a date like" in client.get("/staff/?from=yesterday").get_data(as_text=True)


def test_dashboard_item_details_retry_and_cancel(client, app, broken_template):
    ready = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"leg_diameter": 34.7}, "material": "petg"})).get_json()
    broken = client.post("/api/v1/orders", json=order_body(
        {"template": broken_template, "params": {"size": 21.5}})).get_json()
    run_queue(app)
    waiting = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"leg_diameter": 35.3}},
        {"template": "leg_cap", "params": {"leg_diameter": 35.9}})).get_json()
    login(client, app)

    detail = page(client.get(f"/staff/orders/{ready['id']}"))
    text = " ".join(detail.text_content().split())
    assert "Leg diameter 34.7 mm" in text and "watertight: yes" in text and "valid solid: yes" in text
    assert {a.rsplit("?", 1)[0].rsplit(".", 1)[-1] for a in detail.xpath("//ul[@class='files']//a/@href")} \
        == {"step", "stl", "3mf", "svg", "json"}

    failed = page(client.get(f"/staff/orders/{broken['id']}"))
    assert "the geometry kernel failed" in failed.xpath("//dd[@class='reason']")[0].text_content()
    retry_form = failed.xpath("//form[contains(@action, '/retry')]")[0]
    response = client.post(retry_form.get("action"), data={"csrf_token": csrf_token(failed)})
    assert response.status_code == 303
    after = page(client.get(response.headers["Location"]))
    assert "is queued again" in after.text_content()
    assert after.xpath("//h2//span[contains(@class, 'state')]")[0].text_content() == "queued"

    for action in ("retry", "cancel"):
        assert client.post(f"/staff/items/99999999999999999999/{action}",
                           data={"csrf_token": csrf_token(failed)}).status_code == 404
    queued = page(client.get(f"/staff/orders/{waiting['id']}"))
    cancel_one = queued.xpath("//form[contains(@action, '/items/') and contains(@action, '/cancel')]")[0]
    client.post(cancel_one.get("action"), data={"csrf_token": csrf_token(queued)})
    client.post(f"/staff/orders/{waiting['id']}/cancel", data={"csrf_token": csrf_token(queued)})
    shown = client.get(f"/api/v1/orders/{waiting['id']}", headers={"X-Order-Token": waiting["token"]}).get_json()
    assert [item["state"] for item in shown["items"]] == ["failed", "failed"]
    assert all(item["reason"].startswith("cancelled by the shop") for item in shown["items"])
    run_queue(app)  # the cancelled items' queued tasks find nothing to do
    again = client.get(f"/api/v1/orders/{waiting['id']}", headers={"X-Order-Token": waiting["token"]}).get_json()
    assert again["items"] == shown["items"]
    cancelled = page(client.get(f"/staff/orders/{waiting['id']}"))
    assert [s.text_content() for s in cancelled.xpath("//h2//span[contains(@class, 'state')]")] == ["cancelled"] * 2
