"""Leases: one claim per item, heartbeats, expiry, re-queueing, idempotent completion (real database and renders)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select, update

from web.models import Artifact, OrderItem, utcnow
from web.orders.generation import Generation

from .conftest import order_body, services, test_config, unique_shelf


def new_item(client, app, template: str = "wall_shelf", **params) -> int:
    params = params or unique_shelf()
    client.post("/api/v1/orders", json=order_body({"template": template, "params": params}))
    with services(app).database.session() as session:
        return session.scalar(select(func.max(OrderItem.id)))


def item(app, item_id: int) -> OrderItem:
    with services(app).database.session() as session:
        return session.get(OrderItem, item_id)


def expire(app, item_id: int) -> None:
    with services(app).database.transaction() as session:
        session.execute(update(OrderItem).where(OrderItem.id == item_id)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_an_item_is_claimed_once(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    claim = generation.claim(item_id)
    assert claim is not None and claim.attempts == 1
    assert generation.claim(item_id) is None
    stored = item(app, item_id)
    assert stored.state == "rendering" and stored.lease_owner == claim.owner
    assert stored.lease_expires_at > utcnow() + timedelta(seconds=app.config["LEASE_SECONDS"] - 5)


def test_an_expired_lease_can_be_taken_over(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    first = generation.claim(item_id)
    expire(app, item_id)
    second = generation.claim(item_id)
    assert second is not None and second.owner != first.owner and second.attempts == 2
    assert not generation.renew(first) and generation.renew(second)


def test_the_heartbeat_keeps_a_long_render_leased(tmp_path, cache_folder, client, app):
    config = {**app.config, **test_config(tmp_path, cache_folder, LEASE_SECONDS=1.0, HEARTBEAT_SECONDS=0.2)}
    generation = Generation(config, services(app).database)
    item_id = new_item(client, app)
    claim = generation.claim(item_id)
    from web.orders.generation import Heartbeat

    with Heartbeat(generation, claim):
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
        assert item(app, item_id).lease_expires_at > utcnow()
        assert generation.claim(item_id) is None
    time.sleep(1.2)
    assert item(app, item_id).lease_expires_at < utcnow()  # no heartbeat, no lease


def test_reaping_requeues_an_expired_item_and_hands_it_over_once(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    huey = services(app).queue.huey
    huey.flush()
    generation.claim(item_id)
    assert generation.reap(services(app).queue.enqueue)["requeued"] == []  # the lease is still good
    expire(app, item_id)
    enqueued = []
    reaped = generation.reap(enqueued.append)
    assert reaped["requeued"] == [item_id] and enqueued == [item_id]
    assert item(app, item_id).state == "queued" and "stopped renewing" in item(app, item_id).last_error
    assert generation.reap(enqueued.append) == {"requeued": [], "failed": [], "enqueued": []}
    assert generation.run(item_id) == "ready" and item(app, item_id).attempts == 2


def test_an_item_that_keeps_killing_workers_fails(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    for _ in range(app.config["RENDER_ATTEMPTS"]):
        assert generation.claim(item_id) is not None
        expire(app, item_id)
        generation.reap(lambda _: None)
    stored = item(app, item_id)
    assert stored.state == "failed" and "stopped without finishing 3 times" in stored.last_error
    assert ":" not in stored.reason and "worker" not in stored.reason  # the customer reads no host or pid


def test_a_never_enqueued_item_is_enqueued_after_the_grace(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    with services(app).database.transaction() as session:  # as if the process died between commit and enqueue
        session.execute(update(OrderItem).where(OrderItem.id == item_id).values(
            enqueued_at=None, created_at=utcnow() - timedelta(seconds=app.config["ENQUEUE_GRACE_SECONDS"] + 1)))
    enqueued = []
    assert generation.reap(enqueued.append)["enqueued"] == [item_id] and enqueued == [item_id]
    assert item(app, item_id).enqueued_at is not None
    assert generation.reap(enqueued.append)["enqueued"] == []


def test_finishing_twice_records_the_files_once(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    first = generation.claim(item_id)
    manifest = generation.render(first)
    expire(app, item_id)
    second = generation.claim(item_id)  # a second worker took over the "dead" lease
    assert generation.finish(second, generation.render(second), 1.0)
    assert not generation.finish(first, manifest, 1.0)
    with services(app).database.session() as session:
        artifacts = session.scalars(select(Artifact).where(Artifact.item_id == item_id)).all()
    assert len(artifacts) == len(manifest.files) + 1  # + manifest.json
    assert len({a.filename for a in artifacts}) == len(artifacts)


def test_a_version_mismatch_is_not_rendered_with_another_version(app, client):
    generation = services(app).generation
    item_id = new_item(client, app)
    with services(app).database.transaction() as session:
        session.execute(update(OrderItem).where(OrderItem.id == item_id).values(template_version="0.9.0"))
    assert generation.run(item_id) == "retry"
    stored = item(app, item_id)
    assert stored.state == "queued" and "made with wall_shelf 0.9.0" in stored.last_error
