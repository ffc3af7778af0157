"""Orders through the Flask test client: placing, validating, idempotency, tokens, generation and downloads.

The queue is the app's real SQLite huey queue; ``run_queue`` executes its tasks in this
process (the CAD kernel runs for real).
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

import parametric
from web.models import Artifact, IdempotencyKey, Order, OrderItem

from .conftest import order_body, run_queue, services, unique_width


def place(client, body, **headers):
    return client.post("/api/v1/orders", json=body, headers=headers)


def count(app, model) -> int:
    with services(app).database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_new_order_is_queued_and_handed_to_the_queue(app, client):
    width = unique_width()
    response = place(client, order_body({"template": "wall_shelf", "params": {"width": f"{width}mm"}, "quantity": 2,
                                         "material": "pla"}))
    assert response.status_code == 201
    order = response.get_json()
    assert len(order["id"]) == 32 and len(order["token"]) >= 40
    assert order["status"] == "queued" and response.headers["Location"] == f"/api/v1/orders/{order['id']}"
    [item] = order["items"]
    template = parametric.get_template("wall_shelf")
    assert item["params"] == template.resolve({"width": width}).canonical()
    assert (item["template"], item["version"], item["quantity"], item["material"]) == \
        ("wall_shelf", template.version, 2, "pla")
    assert item["state"] == "queued" and item["files"] == [] and item["manifest"] is None
    assert services(app).queue.huey.pending_count() == 1
    with services(app).database.session() as session:
        stored = session.scalars(select(OrderItem)).one()
        assert stored.enqueued_at is not None and stored.cache_key


def test_queued_order_becomes_ready_with_downloadable_files(app, client, output_root):
    order = place(client, order_body({"template": "wall_shelf", "params": {"width": unique_width()},
                                      "material": "oak"})).get_json()
    assert run_queue(app) == ["ready"]
    response = client.get(f"/api/v1/orders/{order['id']}", headers={"X-Order-Token": order["token"]})
    assert response.status_code == 200
    ready = response.get_json()
    assert ready["status"] == "ready" and "token" not in ready
    [item] = ready["items"]
    assert item["state"] == "ready" and item["attempts"] == 1 and item["reason"] is None
    assert {f["format"] for f in item["files"]} == {"step", "stl", "3mf", "svg"}
    for record in item["files"]:
        download = client.get(record["url"])
        assert download.status_code == 200
        assert hashlib.sha256(download.data).hexdigest() == record["sha256"] and len(download.data) == record["bytes"]
        assert download.headers["Content-Disposition"].startswith("attachment")
    manifest = json.loads(client.get(item["manifest"]).data)
    assert manifest["template"] == "wall_shelf" and manifest["params"] == item["params"]
    assert manifest["material"]["id"] == "oak" and manifest["checks"]["watertight"] is True
    assert {f["sha256"] for f in manifest["files"]} == {f["sha256"] for f in item["files"]}
    stl = next(f for f in item["files"] if f["format"] == "stl" and f["part"] == "board")
    token_in_header = client.get(stl["url"].split("?")[0], headers={"X-Order-Token": order["token"]})
    assert token_in_header.status_code == 200


def test_a_configuration_in_the_cache_is_ready_when_the_order_returns(app, client):
    body = order_body({"template": "wall_shelf", "params": {"width": unique_width()}, "material": "pla"})
    first = place(client, body).get_json()
    run_queue(app)
    second = place(client, body).get_json()
    assert second["id"] != first["id"]
    assert second["status"] == "ready" and services(app).queue.huey.pending_count() == 0
    [item] = second["items"]
    assert {f["format"] for f in item["files"]} == {"step", "stl", "3mf", "svg"} and item["manifest"]
    assert client.get(item["files"][0]["url"]).status_code == 200


def test_every_problem_is_listed_with_its_field(client):
    body = {"customer": {"name": " ", "email": "not-an-email", "phone": "123"},
            "items": [{"template": "wall_shelf", "params": {"width": 5000, "depth": "10 furlongs", "colour": "red"},
                       "quantity": 0, "material": "steel"},
                      {"template": "spaceship"},
                      {"template": "wall_shelf", "params": {"hole_diameter": 8, "bracket_width": 20}, "quantity": True},
                      "a shelf please"],
            "coupon": "FREE"}
    response = place(client, body)
    assert response.status_code == 422
    errors = {(e["field"], e["message"]) for e in response.get_json()["errors"]}
    fields = [field for field, _ in errors]
    for expected in ("coupon", "customer.name", "customer.email", "customer.phone", "items[0].params.width",
                     "items[0].params.depth", "items[0].params.colour", "items[0].quantity", "items[0].material",
                     "items[1].template", "items[2].quantity", "items[3]"):
        assert expected in fields, expected
    messages = dict(errors)
    assert "300 to 1500 mm" in messages["items[0].params.width"]
    assert "birch_plywood" in messages["items[0].material"] or "pla" in messages["items[0].material"]
    assert "wall_shelf" in messages["items[1].template"]
    assert "twice the hole diameter" in messages["items[2].params.hole_diameter"]  # a cross-field rule


@pytest.mark.parametrize(("body", "field"), [
    ([], ""),
    ({"customer": {"name": "Ada", "email": "ada@example.com"}}, "items"),
    ({"customer": {"name": "Ada", "email": "ada@example.com"}, "items": []}, "items"),
    ({"items": [{"template": "wall_shelf"}]}, "customer"),
    ({"customer": "Ada", "items": [{"template": "wall_shelf"}]}, "customer"),
    (order_body({"template": "wall_shelf", "params": [1, 2]}), "items[0].params"),
    (order_body({"template": "wall_shelf", "preset": "nope"}), "items[0].preset"),
    (order_body({"template": "wall_shelf", "quantity": 10**6}), "items[0].quantity"),
    (order_body({"params": {}}), "items[0].template"),
])
def test_invalid_orders_are_422_naming_the_field(client, body, field):
    response = place(client, body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_too_many_items_is_refused(app, client):
    body = order_body(*[{"template": "wall_shelf"}] * (app.config["MAX_ITEMS_PER_ORDER"] + 1))
    response = place(client, body)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "items"


def test_a_preset_with_overrides_is_stored_canonical(client):
    body = order_body({"template": "wall_shelf", "preset": "bookshelf", "params": {"width": "30in"}})
    [item] = place(client, body).get_json()["items"]
    expected = parametric.get_template("wall_shelf").resolve({"width": "30in"}, "bookshelf").canonical()
    assert item["params"] == expected and item["params"]["width"] == pytest.approx(762)


def test_a_preset_is_ordered_in_its_own_material(client):
    body = order_body({"template": "cabinet_door", "preset": "tall-pantry"},
                      {"template": "gridfinity_bin", "preset": "pen-cup-1x1"},
                      {"template": "cabinet_door", "preset": "tall-pantry", "material": "mdf"})
    items = place(client, body).get_json()["items"]
    assert [item["material"] for item in items] == ["oak", "petg", "mdf"]  # a material asked for wins


def test_an_idempotent_retry_returns_the_same_order(app, client):
    body = order_body({"template": "wall_shelf", "params": {"width": unique_width()}})
    first = place(client, body, **{"Idempotency-Key": "order-7f3a"})
    again = place(client, json.loads(json.dumps(body, indent=3)), **{"Idempotency-Key": "order-7f3a"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["token"] == first.get_json()["token"]
    assert count(app, Order) == 1 and count(app, OrderItem) == 1 and count(app, IdempotencyKey) == 1
    assert services(app).queue.huey.pending_count() == 1


def test_the_same_key_with_another_body_is_refused(app, client):
    place(client, order_body(), **{"Idempotency-Key": "k-1"})
    other = place(client, order_body(name="Somebody Else"), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    [error] = other.get_json()["errors"]
    assert error["field"] == "Idempotency-Key" and "different" in error["message"]
    assert count(app, Order) == 1


def test_a_bad_idempotency_key_is_refused(client):
    response = place(client, order_body(), **{"Idempotency-Key": "x" * 300})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_retries_with_one_key_make_one_order(app):
    body = order_body({"template": "wall_shelf", "params": {"width": unique_width()}})
    barrier = threading.Barrier(8)

    def post(_):
        client = app.test_client()
        barrier.wait()
        return place(client, body, **{"Idempotency-Key": "concurrent-1"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert count(app, Order) == 1 and count(app, OrderItem) == 1


def test_an_order_is_read_only_with_its_token(client):
    order = place(client, order_body()).get_json()
    url = f"/api/v1/orders/{order['id']}"
    missing = client.get(url)
    assert missing.status_code == 403 and missing.get_json()["errors"][0]["field"] == "token"
    other = "B" if order["token"].endswith("A") else "A"  # a token that differs in its last character
    wrong = client.get(url, headers={"X-Order-Token": order["token"][:-1] + other})
    assert wrong.status_code == 404
    assert client.get(f"{url}?token=nonsense").status_code == 404
    assert client.get("/api/v1/orders/" + "0" * 32, headers={"X-Order-Token": order["token"]}).status_code == 404
    assert client.get(f"{url}?token={order['token']}").status_code == 200
    assert client.get(url, headers={"X-Order-Token": "é" * 5}).status_code == 404


def test_downloads_need_the_token_and_stay_in_the_output_folder(app, client):
    order = place(client, order_body({"template": "wall_shelf", "params": {"width": unique_width()}})).get_json()
    run_queue(app)
    token = order["token"]
    base = f"/api/v1/orders/{order['id']}/items/1/files"
    assert client.get(f"{base}/board.stl").status_code == 403
    assert client.get(f"{base}/board.stl?token=wrong").status_code == 404
    assert client.get(f"{base}/board.stl?token={token}").status_code == 200
    for sneaky in ("../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "../1/board.stl",
                   "%2e%2e/%2e%2e/cache", "board.stl/../../../instance/parametric.db"):
        response = client.get(f"{base}/{sneaky}?token={token}", follow_redirects=True)
        assert response.status_code == 404, sneaky
        assert b"root:" not in response.data
    assert client.get(f"/api/v1/orders/{order['id']}/items/2/files/board.stl?token={token}").status_code == 404
    with services(app).database.transaction() as session:  # even a tampered row cannot point outside
        artifact = session.scalars(select(Artifact).where(Artifact.filename == "board.stl")).one()
        artifact.path = "../../../../etc/passwd"
    assert client.get(f"{base}/board.stl?token={token}").status_code == 404


def test_a_kernel_failure_is_retried_then_the_item_fails_with_its_reason(app, client, broken_template):
    order = place(client, order_body({"template": broken_template, "params": {"size": 15}})).get_json()
    outcomes = run_queue(app)
    attempts = app.config["RENDER_ATTEMPTS"]
    assert outcomes[-1] == "failed" and len(outcomes) == attempts
    shown = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    assert shown["status"] == "failed"
    [item] = shown["items"]
    assert item["state"] == "failed" and item["attempts"] == attempts
    assert "BRep_API: command not done" in item["reason"] and item["files"] == []


def test_a_failed_item_does_not_hide_the_ready_ones(app, client, broken_template):
    order = place(client, order_body({"template": "wall_shelf", "params": {"width": unique_width()}},
                                     {"template": broken_template})).get_json()
    run_queue(app)
    shown = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    assert [i["state"] for i in shown["items"]] == ["ready", "failed"] and shown["status"] == "failed"
    assert shown["items"][0]["files"]
