"""A link that restores a configuration exactly: every field as typed, the units and the preset; made on the page
with or without JavaScript (the browser half is in test_browser.py)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import parametric

from .conftest import answered
from .test_pages import form_values, page


def share_link(document) -> str:
    [link] = document.xpath("//input[@id='share-link']/@value")
    return link


def restored(client, link: str):
    parts = urlsplit(link)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    return page(response)


def configuration(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if k != "csrf_token"}


def test_the_link_restores_every_field_units_and_preset_exactly(client):
    start = page(client.get("/configure/bookcase?preset=paperback&units=in"))
    values = form_values(start, "configurator")
    values.update({"params.width": "31.4999", "params.height": "6 ft 1.37 in", "material": "oak", "quantity": "3"})
    values.pop("params.back_panel", None)  # a switch turned off
    # the customer's edits, sent as a browser without JavaScript sends them ("Make the link" button)
    made = client.get("/configure/bookcase", query_string={**values, "share": "1"})
    assert made.status_code == 303
    link = made.headers["Location"]
    assert link.endswith("#share") and "csrf_token" not in link and "share=" not in link
    query = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert query["params.width"] == "31.4999" and query["params.height"] == "6 ft 1.37 in"  # as typed
    assert query["units"] == "in" and query["preset"] == "paperback" and "params.back_panel" not in query
    again = restored(client, link)
    assert configuration(form_values(again, "configurator")) == configuration(values)
    assert again.xpath("//section[@class='presets']//a[@aria-current='true']/text()") == \
        [parametric.get_template("bookcase").presets["paperback"].label]
    assert share_link(again).split("#")[0] == link.split("#")[0]  # the restored page offers the same link


def test_every_page_of_the_configurator_offers_its_link(client):
    document = page(client.get("/configure/wall_shelf?preset=bookshelf&units=cm"))
    link = share_link(document)
    assert link.startswith("http://localhost/configure/wall_shelf?")
    query = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert query["preset"] == "bookshelf" and query["units"] == "cm"
    assert configuration(form_values(restored(client, link), "configurator")) == \
        configuration(form_values(document, "configurator"))
    assert document.xpath("//noscript//button[@name='share']")  # without JavaScript: a button makes the link


def test_a_refused_configuration_keeps_its_link_and_preset(client):
    document = page(client.get("/configure/wall_shelf?preset=spice-rack&units=in"))
    values = {**form_values(document, "configurator"), "params.width": "600in"}
    refused = client.post("/configure/wall_shelf", data=values)
    assert refused.status_code == 422
    again = page(refused)
    query = dict(parse_qsl(urlsplit(share_link(again)).query, keep_blank_values=True))
    # shown again in the form's units (600 in), as the form shows it
    assert (query["params.width"], query["units"], query["preset"]) == ("600", "in", "spice-rack")


def test_a_restored_link_in_inches_is_built_unsnapped(app, client):
    """The link's values go through the same reading as the form: 31.4999 in is 800.0975 mm (the core keeps
    lengths to 0.1 micrometre), on no 10 mm step."""
    document = page(client.get("/configure/wall_shelf?units=in"))
    values = {**form_values(document, "configurator"), "params.width": "31.4999"}
    link = client.get("/configure/wall_shelf", query_string={**values, "share": "1"}).headers["Location"]
    query = urlsplit(link).query
    response = answered(app, client, "GET", f"/configure/wall_shelf/preview?{query}",
                        headers={"Accept": "application/json"})
    assert response.status_code == 200, response.data[:300]
    assert response.get_json()["params"]["width"] == round(31.4999 * 25.4, 4) == 800.0975
