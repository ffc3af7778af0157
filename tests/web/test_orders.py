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

from .conftest import order_body, run_queue, services, unique_shelf, unique_width


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
    assert services(app).queue.huey.pending_count() == 2  # its files, and its quote for the order's total
    with services(app).database.session() as session:
        stored = session.scalars(select(OrderItem)).one()
        assert stored.enqueued_at is not None and stored.cache_key


def test_queued_order_becomes_ready_with_downloadable_files(app, client, output_root):
    order = place(client, order_body({"template": "wall_shelf", "params": unique_shelf(),
                                      "material": "oak"})).get_json()
    assert run_queue(app) == ["done", "ready"]  # the order's quote (its total), then its files
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
    body = order_body({"template": "wall_shelf", "params": unique_shelf(), "material": "pla"})
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
    body = order_body({"template": "wall_shelf", "params": unique_shelf()})
    first = place(client, body, **{"Idempotency-Key": "order-7f3a"})
    again = place(client, json.loads(json.dumps(body, indent=3)), **{"Idempotency-Key": "order-7f3a"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["token"] == first.get_json()["token"]
    assert count(app, Order) == 1 and count(app, OrderItem) == 1 and count(app, IdempotencyKey) == 1
    assert services(app).queue.huey.pending_count() == 2  # its files and its quote, once


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
    body = order_body({"template": "wall_shelf", "params": unique_shelf()})
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
    order = place(client, order_body({"template": "wall_shelf", "params": unique_shelf()})).get_json()
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
    quote, renders = outcomes[0], outcomes[1:]  # the order's quote build (for its total) first, then its files
    assert quote == "failed" and renders[-1] == "failed" and len(renders) == attempts
    shown = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    assert shown["status"] == "failed"
    assert shown["total"]["state"] == "pending" and shown["total"]["total"] is None
    [missing] = shown["total"]["missing"]
    assert missing["position"] == 1 and missing["reason"].startswith("it is not being made")
    [item] = shown["items"]
    assert item["state"] == "failed" and item["attempts"] == attempts
    assert "BRep_API: command not done" in item["reason"] and item["files"] == []


def test_a_failed_item_does_not_hide_the_ready_ones(app, client, broken_template):
    order = place(client, order_body({"template": "wall_shelf", "params": unique_shelf()},
                                     {"template": broken_template})).get_json()
    run_queue(app)
    shown = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    assert [i["state"] for i in shown["items"]] == ["ready", "failed"] and shown["status"] == "failed"
    assert shown["items"][0]["files"]


# -- the order's total (issue 13) -------------------------------------------------------------------


def test_an_api_orders_total_is_the_shops_figure_with_one_setup_fee_per_process(app, client):
    """An API order is priced by the checkout's own flow: while its lines are measured and sliced its total is
    pending (and says which line waits, never a partial sum); then it is each line's quote with the printing setup
    fee once for the order, the figure the tracking page and the confirmation show."""
    from web.orders.totals import order_price

    from .test_pages import page

    fee = float(services(app).config["SETUP_FEE"]["fdm"])
    lines = [{"template": "leg_cap", "params": {"leg_diameter": 33}, "quantity": 3, "material": "pla"},
             {"template": "leg_cap", "params": {"leg_diameter": 27}, "quantity": 2, "material": "pla"}]
    placed = place(client, order_body(*lines))
    assert placed.status_code == 201
    order = placed.get_json()
    pending = order["total"]
    assert pending["state"] == "pending" and pending["total"] is None and pending["currency"] is None
    assert [line["position"] for line in pending["missing"]] == [1, 2]
    assert "being worked out" in pending["missing"][0]["reason"]
    run_queue(app)
    read = client.get(f"/api/v1/orders/{order['id']}", headers={"X-Order-Token": order["token"]})
    assert read.status_code == 200
    total = read.get_json()["total"]
    assert total["state"] == "final" and total["currency"] == "EUR" and "missing" not in total
    assert [line["setup"] for line in total["lines"]] == [fee, 0.0]  # both printed: the fee once, on the first
    assert [line["setup_processes"] for line in total["lines"]] == [["fdm"], []]
    assert total["setup"] == fee
    assert total["total"] == pytest.approx(sum(line["total"] for line in total["lines"]), abs=0.011)
    assert total["total"] == pytest.approx(total["material"] + total["machine"] + total["setup"], abs=0.011)
    # the checkout's figure for the same lines: their quotes, one setup fee per process for the order
    quotes = [client.post("/api/v1/quotes", json=line).get_json() for line in lines]
    assert all(quoted["figures"] == "final" for quoted in quotes)
    checkout = order_price(quotes, services(app).config["SETUP_FEE"])
    assert total["total"] == checkout["total"] and total["setup"] == checkout["setup"] == fee
    assert [line["total"] for line in total["lines"]] == [line["total"] for line in checkout["lines"]]
    assert sum(quoted["price"]["setup"] for quoted in quotes) == 2 * fee  # alone, each line would pay it
    # the same figure on the tracking page and on the confirmation
    for url in (f"/track/{order['id']}?token={order['token']}",
                f"/orders/{order['id']}/confirmation?token={order['token']}"):
        shown = page(client.get(url)).get_element_by_id("order-total").text_content()
        assert f"{total['total']:.2f} EUR" in shown and f"setup {fee:.2f} EUR" in shown
    # stored once: a second read is the same figure, from the items' records
    again = client.get(f"/api/v1/orders/{order['id']}", headers={"X-Order-Token": order["token"]}).get_json()
    assert again["total"] == total
    with services(app).database.session() as session:
        stored = session.scalars(select(OrderItem).where(OrderItem.order_id == order["id"])
                                 .order_by(OrderItem.position)).all()
        assert [item.quote["price"]["total"] for item in stored] == [line["total"] for line in total["lines"]]


def test_a_pending_total_is_shown_on_the_tracking_page_as_not_known_yet(app, client):
    from .test_pages import page

    order = place(client, order_body({"template": "leg_cap", "params": {"leg_diameter": 29}, "quantity": 1,
                                      "material": "pla"})).get_json()
    assert order["total"]["state"] == "pending"
    shown = page(client.get(f"/track/{order['id']}?token={order['token']}")).get_element_by_id("order-total")
    assert "not known yet" in shown.text_content() and "Item 1: its price is being worked out" in shown.text_content()
