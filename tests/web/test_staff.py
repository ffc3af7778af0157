"""Staff endpoints need a staff login; accounts keep only a password hash."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from web.models import User
from web.staff.auth import UserError, add_user, verify

from .conftest import STAFF, order_body, run_queue, services, unique_shelf

STAFF_GETS = ("/api/v1/staff/orders", "/api/v1/staff/queue", "/api/v1/staff/orders/" + "0" * 32)


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", STAFF_GETS)
def test_staff_endpoints_refuse_without_a_login(app, client, path):
    add_user(services(app).database, *STAFF)
    for headers in ({}, basic(STAFF[0], "wrong password"), basic("nobody", STAFF[1]),
                    {"Authorization": "Bearer abc"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.get_json()["errors"][0]["field"] == "Authorization"
    assert client.post("/api/v1/staff/items/1/retry").status_code == 401


def test_passwords_are_stored_hashed(app):
    database = services(app).database
    add_user(database, "grace", "a long enough secret")
    with database.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "grace"))
    assert "a long enough secret" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    assert verify(database, "grace", "a long enough secret")
    assert not verify(database, "grace", "A long enough secret")
    with pytest.raises(UserError, match="already"):
        add_user(database, "grace", "another secret!")
    with pytest.raises(UserError, match="at least"):
        add_user(database, "linus", "short")
    with pytest.raises(UserError, match="user name"):
        add_user(database, "no spaces please", "long enough secret")


def test_staff_list_every_order_with_items(app, client, staff):
    first = client.post("/api/v1/orders", json=order_body(name="First Customer")).get_json()
    second = client.post("/api/v1/orders", json=order_body(name="Second Customer")).get_json()
    response = client.get("/api/v1/staff/orders", headers=staff)
    assert response.status_code == 200
    page = response.get_json()
    assert page["total"] == 2 and [o["id"] for o in page["orders"]] == [second["id"], first["id"]]
    assert page["orders"][0]["customer"]["name"] == "Second Customer"
    assert page["orders"][0]["items"][0]["state"] == "queued" and "lease_owner" in page["orders"][0]["items"][0]
    limited = client.get("/api/v1/staff/orders?limit=1&offset=1", headers=staff).get_json()
    assert [o["id"] for o in limited["orders"]] == [first["id"]]
    assert client.get("/api/v1/staff/orders?state=ready", headers=staff).get_json()["total"] == 0
    assert client.get("/api/v1/staff/orders?state=queued", headers=staff).get_json()["total"] == 2
    one = client.get(f"/api/v1/staff/orders/{first['id']}", headers=staff)
    assert one.status_code == 200 and one.get_json()["id"] == first["id"]
    assert client.get("/api/v1/staff/orders/" + "f" * 32, headers=staff).status_code == 404


def test_bad_staff_query_parameters_are_422(client, staff):
    response = client.get("/api/v1/staff/orders?limit=0&offset=-3&state=lost", headers=staff)
    assert response.status_code == 422
    assert {e["field"] for e in response.get_json()["errors"]} == {"limit", "offset", "state"}
    assert client.get("/api/v1/staff/orders?limit=many", headers=staff).status_code == 422


def test_queue_counts_items_per_state(app, client, staff):
    client.post("/api/v1/orders", json=order_body({"template": "wall_shelf", "params": unique_shelf()},
                                                  {"template": "wall_shelf", "params": unique_shelf()}))
    queue = client.get("/api/v1/staff/queue", headers=staff).get_json()
    assert queue["states"] == {"queued": 2, "rendering": 0, "ready": 0, "failed": 0} and queue["depth"] == 2
    run_queue(app)
    queue = client.get("/api/v1/staff/queue", headers=staff).get_json()
    assert queue["states"]["ready"] == 2 and queue["depth"] == 0 and queue["expired_leases"] == 0


def test_staff_can_retry_a_failed_item(app, client, staff, broken_template):
    order = client.post("/api/v1/orders", json=order_body({"template": broken_template})).get_json()
    run_queue(app)
    item = client.get(f"/api/v1/staff/orders/{order['id']}", headers=staff).get_json()["items"][0]
    assert item["state"] == "failed"
    retried = client.post(f"/api/v1/staff/items/{item['id']}/retry", headers=staff)
    assert retried.status_code == 200
    assert retried.get_json()["state"] == "queued" and retried.get_json()["attempts"] == 0
    assert services(app).queue.huey.pending_count() == 1
    again = client.post(f"/api/v1/staff/items/{item['id']}/retry", headers=staff)
    assert again.status_code == 409
    assert client.post("/api/v1/staff/items/999999/retry", headers=staff).status_code == 404
    assert run_queue(app)[-1] == "failed"  # still the same broken geometry
