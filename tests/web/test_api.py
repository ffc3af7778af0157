"""Templates, the OpenAPI document and the API's error shapes, through the Flask test client."""

from __future__ import annotations

import re

import parametric
from web.openapi import params_schema


def test_templates_lists_every_registered_template(client):
    response = client.get("/api/v1/templates")
    assert response.status_code == 200
    listed = {row["id"]: row for row in response.get_json()["templates"]}
    assert set(listed) == {t.id for t in parametric.templates()}
    shelf = listed["wall_shelf"]
    assert shelf["version"] == parametric.get_template("wall_shelf").version
    assert "pla" in shelf["materials"] and "bookshelf" in shelf["presets"]
    assert shelf["links"]["self"] == "/api/v1/templates/wall_shelf"


def test_template_detail_is_the_templates_own_schema(client):
    response = client.get("/api/v1/templates/wall_shelf")
    assert response.status_code == 200
    detail = response.get_json()
    template = parametric.get_template("wall_shelf")
    assert detail["schema"] == template.schema()
    assert detail["units"]["width"] == "mm" and detail["units"]["bracket_count"] == "count"
    assert detail["preset_params"]["bookshelf"]["params"] == dict(template.presets["bookshelf"].params)


def test_unknown_template_is_a_json_404(client):
    response = client.get("/api/v1/templates/spaceship")
    assert response.status_code == 404
    [error] = response.get_json()["errors"]
    assert error["field"] == "template_id" and "wall_shelf" in error["message"]


def test_unknown_route_and_wrong_method_are_json_under_api(client):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.is_json
    assert missing.get_json()["errors"][0]["message"]
    wrong = client.delete("/api/v1/templates")
    assert wrong.status_code == 405 and wrong.is_json
    assert "GET" in wrong.headers["Allow"]
    outside = client.get("/not-the-api")
    assert outside.status_code == 404 and not outside.is_json


def test_body_that_is_not_json_is_400(client):
    for path in ("/api/v1/orders", "/api/v1/quotes"):
        response = client.post(path, data="customer=ada", content_type="application/json")
        assert response.status_code == 400, path
        assert "must be JSON" in response.get_json()["errors"][0]["message"]
        undeclared = client.post(path, data="customer=ada", content_type="application/x-www-form-urlencoded")
        assert undeclared.status_code == 415, path  # not even declared JSON (tests/web/test_hostile_inputs.py)
    nan = client.post("/api/v1/quotes", data='{"template": "wall_shelf", "params": {"width": NaN}}',
                      content_type="application/json")
    assert nan.status_code == 400


def test_body_over_the_limit_is_413_json(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = '{"customer": {"name": "' + "x" * limit + '"}}'
    response = client.post("/api/v1/orders", data=body, content_type="application/json")
    assert response.status_code == 413
    assert str(limit) in response.get_json()["errors"][0]["message"]


def test_openapi_documents_every_api_route(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)  # <int(max=9):item_id> -> {item_id}
        routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented


def test_openapi_params_come_from_the_template_models(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for template in parametric.templates():
        generated = schemas[f"{template.id}_params"]
        assert generated == params_schema(template)
        assert set(generated["properties"]) == set(template.Params.model_fields)
        item = schemas[f"{template.id}_item"]
        assert item["properties"]["template"]["const"] == template.id
        assert item["properties"]["material"]["enum"] == list(template.materials)
    width = schemas["wall_shelf_params"]["properties"]["width"]
    number, text = width["anyOf"]
    assert (number["minimum"], number["maximum"]) == (300, 1500) and text["type"] == "string"
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["Item"]["oneOf"]} == \
        {f"{t.id}_item" for t in parametric.templates()}


def test_openapi_follows_a_newly_registered_template(client, broken_template):
    document = client.get("/api/v1/openapi.json").get_json()
    assert f"{broken_template}_params" in document["components"]["schemas"]
    assert document["components"]["schemas"]["Item"]["discriminator"]["mapping"][broken_template]
