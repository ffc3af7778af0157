"""Orders under abuse: tokens are kept only as hashes; an Idempotency-Key is its client's for 24 hours (a
replay from another client is refused and learns nothing; after expiry the key is forgotten); a client
places a limited number of orders per hour; an order holds a bounded number of pieces."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update

from web import create_app
from web.models import IdempotencyKey, utcnow

from .conftest import order_body, services, test_config
from .test_pages import form_values, page


def from_address(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def every_row(app: Flask) -> str:
    """Every stored row of the tables that touch orders, as text."""
    with services(app).database.session() as session:
        return repr([session.execute(text(f"SELECT * FROM {table}")).all()
                     for table in ("orders", "idempotency_keys", "order_items")])


def test_order_tokens_are_stored_as_hashes(app, client):
    created = client.post("/api/v1/orders", json=order_body(), headers={"Idempotency-Key": "hash-at-rest"})
    token = created.get_json()["token"]
    assert len(token) >= 43
    stored = every_row(app)
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    order_id = created.get_json()["id"]
    assert client.get(f"/api/v1/orders/{order_id}", headers={"X-Order-Token": token}).status_code == 200
    assert client.get(f"/track/{order_id}?token={token}").status_code == 200
    wrong = hashlib.sha256(token.encode()).hexdigest()  # the stored hash is not a token
    assert client.get(f"/api/v1/orders/{order_id}?token={wrong}").status_code == 404


def test_an_idempotency_key_replays_only_for_its_client(app):
    first, other = from_address(app, "198.51.100.20"), from_address(app, "203.0.113.20")
    headers = {"Idempotency-Key": "5c1f-replay"}
    created = first.post("/api/v1/orders", json=order_body(), headers=headers)
    assert created.status_code == 201
    again = first.post("/api/v1/orders", json=order_body(), headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == created.get_json()["id"]
    assert again.get_json()["token"] == created.get_json()["token"]  # a lost answer can be fetched again
    stolen = other.post("/api/v1/orders", json=order_body(), headers=headers)
    assert stolen.status_code == 409
    problem = stolen.get_json()["errors"][0]
    assert problem["field"] == "Idempotency-Key" and "another client" in problem["message"]
    body = stolen.get_data(as_text=True)
    assert created.get_json()["token"] not in body and created.get_json()["id"] not in body


def test_an_idempotency_key_expires_after_a_day(app):
    client = from_address(app, "198.51.100.21")
    headers = {"Idempotency-Key": "old-key"}
    first = client.post("/api/v1/orders", json=order_body(), headers=headers).get_json()
    with services(app).database.transaction() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, minutes=1)))
    later = client.post("/api/v1/orders", json=order_body(name="Someone Else"), headers=headers)
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert later.get_json()["id"] != first["id"]
    # Once expired, the key is another client's to use too (it was forgotten, not kept as the first client's).
    with services(app).database.transaction() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    assert from_address(app, "203.0.113.21").post("/api/v1/orders", json=order_body(),
                                                  headers=headers).status_code == 201


def test_the_checkout_form_replays_for_its_browser_only(app):
    client = from_address(app, "198.51.100.22")
    configurator = form_values(page(client.get("/configure/leg_cap")), "configurator")
    answered = client.post("/configure/leg_cap", data=configurator)
    if answered.status_code == 202:  # the price is worked out by a worker: run the queue, then ask again
        from .conftest import run_queue

        run_queue(app)
        answered = client.post("/configure/leg_cap", data=configurator)
    checkout = form_values(page(answered))
    values = {**checkout, "name": "Ada", "email": "ada@example.com"}
    first, second = client.post("/checkout", data=values), client.post("/checkout", data=values)
    assert first.status_code == second.status_code == 303 and first.headers["Location"] == second.headers["Location"]
    elsewhere = from_address(app, "203.0.113.22")
    elsewhere.set_cookie("session", client.get_cookie("session").value)  # the same CSRF token, another address
    refused = elsewhere.post("/checkout", data=values)
    assert refused.status_code == 409 and first.headers["Location"] not in refused.get_data(as_text=True)


@pytest.fixture
def limited(tmp_path: Path, cache_folder: Path) -> Any:
    app = create_app(test_config(tmp_path, cache_folder, ORDERS_PER_CLIENT=3, ORDERS_WINDOW_SECONDS=3600,
                                 MAX_UNITS_PER_ORDER=100))
    services(app).database.upgrade()
    yield app
    services(app).database.dispose()


def test_orders_per_client_are_limited(limited):
    client = from_address(limited, "198.51.100.23")
    statuses = [client.post("/api/v1/orders", json=order_body(), headers={"Idempotency-Key": f"k{n}"}).status_code
                for n in range(3)]
    assert statuses == [201, 201, 201]
    replay = client.post("/api/v1/orders", json=order_body(), headers={"Idempotency-Key": "k0"})
    assert replay.status_code == 201  # a replay places nothing, so it is not counted
    refused = client.post("/api/v1/orders", json=order_body())
    assert refused.status_code == 429
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert "too many orders" in refused.get_json()["errors"][0]["message"]
    assert from_address(limited, "203.0.113.23").post("/api/v1/orders", json=order_body()).status_code == 201


def test_pieces_per_order_are_bounded(limited):
    line = {"template": "leg_cap", "params": {}, "quantity": 60, "material": "pla"}
    response = limited.test_client().post("/api/v1/orders", json=order_body(line, line))
    assert response.status_code == 422
    problem = response.get_json()["errors"][0]
    assert problem["field"] == "items" and "120 pieces" in problem["message"] and "at most 100" in problem["message"]
    assert limited.test_client().post("/api/v1/orders", json=order_body(line)).status_code == 201


def test_the_client_is_its_address_and_a_forwarded_address_only_behind_a_trusted_proxy(tmp_path, cache_folder):
    def placed(proxies: int, folder: str) -> list[int]:
        app = create_app(test_config(tmp_path / folder, cache_folder, ORDERS_PER_CLIENT=1, PROXY_COUNT=proxies))
        services(app).database.upgrade()
        client = from_address(app, "192.0.2.1")
        statuses = [client.post("/api/v1/orders", json=order_body(),
                                headers={"X-Forwarded-For": forwarded}).status_code
                    for forwarded in ("198.51.100.30", "198.51.100.31")]
        services(app).database.dispose()
        return statuses

    assert placed(0, "direct") == [201, 429]  # X-Forwarded-For from anyone is not believed: no dodging the limit
    assert placed(1, "proxied") == [201, 201]  # behind one trusted proxy, its X-Forwarded-For names the client
