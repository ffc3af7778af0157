"""Previews and quotes are built by the workers, never in a request thread: a new configuration answers 202 with
Retry-After and is built once by the (real, SQLite) queue; a client asking for too many new ones gets a 429 that
says when to retry; off-step values are snapped to the field's step before the cache key is made."""

from __future__ import annotations

import json
import threading

from web import builds
from web.models import Build
from web.priorities import PRIORITY

from .conftest import run_queue, services, test_config

PREVIEW = "/configure/leg_cap/preview"


def query(sleeve_depth: str, **more: str) -> dict[str, str]:
    return {"params.sleeve_depth": sleeve_depth, "quantity": "1", "material": "pla", **more}


def builds_in(app) -> list[Build]:
    with services(app).database.session() as session:
        return list(session.query(Build).all())


def test_a_new_preview_is_queued_not_built_in_the_request(app, client):
    """No kernel work in the request: 202, nothing in the cache, one build queued at the preview priority."""
    first = client.get(PREVIEW, query_string=query("47.5"))
    assert first.status_code == 202 and first.headers["Retry-After"] == str(app.config["BUILD_POLL_SECONDS"])
    assert first.get_json()["state"] == "preparing" and first.headers["Cache-Control"] == "no-store"
    [build] = builds_in(app)
    assert (build.kind, build.state, build.priority) == ("preview", "queued", PRIORITY["preview"])
    again = client.get(PREVIEW, query_string=query("47.5"))  # polling: the same build, not a second one
    assert again.status_code == 202 and len(builds_in(app)) == 1
    assert services(app).queue.waiting() == {PRIORITY["preview"]: 1}
    assert run_queue(app) == ["done"]
    ready = client.get(PREVIEW, query_string=query("47.5"))
    assert ready.status_code == 200 and ready.get_json()["glb"].startswith("/preview/")
    [build] = builds_in(app)
    assert build.state == "done" and build.seconds > 0 and build.worker


def test_off_step_values_share_one_build_and_the_snapped_value_is_shown(app, client):
    """sleeve_depth has a 0.5 mm step: 33.1, 33.2 and 32.9 are all 33 mm, one cache key, one build."""
    answers = [client.get(PREVIEW, query_string=query(value)) for value in ("33.1", "33.2", "32.9", "33")]
    assert [a.status_code for a in answers] == [202] * 4
    assert len(builds_in(app)) == 1
    assert answers[0].get_json()["snapped"] == {"sleeve_depth": {"given": 33.1, "used": 33.0}}
    assert answers[3].get_json()["snapped"] == {}
    assert {a.get_json()["params"]["sleeve_depth"] for a in answers} == {33.0}
    run_queue(app)
    shown = [client.get(PREVIEW, query_string=query(value)).get_json() for value in ("33.1", "32.9")]
    assert shown[0]["glb"] == shown[1]["glb"]  # the same cache entry
    quoted = client.post("/api/v1/quotes", json={"template": "leg_cap", "params": {"sleeve_depth": 33.24}})
    assert quoted.get_json()["snapped"] == {"sleeve_depth": {"given": 33.24, "used": 33.0}}
    assert quoted.get_json()["params"]["sleeve_depth"] == 33.0


def test_each_client_is_limited_to_a_number_of_new_builds_with_a_clear_429(tmp_path, cache_folder):
    from web import create_app

    app = create_app(test_config(tmp_path, cache_folder, BUILD_LIMIT=3, BUILD_LIMIT_SECONDS=60))
    services(app).database.upgrade()
    client = app.test_client()
    for value in ("20.13", "20.63", "21.13"):  # values no other test previews (the cache is shared)
        assert client.get(PREVIEW, query_string=query(value)).status_code == 202
    refused = client.get(PREVIEW, query_string=query("21.5"))
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and refused.get_json()["retry_after"] == retry_after
    assert f"please try again in {retry_after} s" in refused.get_json()["errors"][0]["message"]
    assert "at most 3 every 60 s" in refused.get_json()["errors"][0]["message"]
    assert len(builds_in(app)) == 3  # the refused one was not queued
    # polling what is already queued is not limited, and neither is another client
    assert client.get(PREVIEW, query_string=query("20")).status_code == 202
    other = client.get(PREVIEW, query_string=query("21.5"), environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 202
    api = client.post("/api/v1/quotes", json={"template": "leg_cap", "params": {"sleeve_depth": 22}})
    assert api.status_code == 429 and int(api.headers["Retry-After"]) >= 1
    page = client.get("/configure/leg_cap/checkout", query_string={**query("22.5"), "units": "mm"})
    assert page.status_code == 429 and "try again in" in page.get_data(as_text=True)
    assert int(page.headers["Retry-After"]) >= 1
    run_queue(app)
    # answers from the cache are never limited
    for _ in range(10):
        assert client.get(PREVIEW, query_string=query("20")).status_code == 200


def test_a_configuration_that_cannot_be_built_is_422_with_the_kernel_reason(app, client, broken_template):
    url = f"/configure/{broken_template}/preview"
    assert client.get(url, query_string={"params.size": "18", "quantity": "1"}).status_code == 202
    assert run_queue(app) == ["failed"]
    refused = client.get(url, query_string={"params.size": "18", "quantity": "1"})
    assert refused.status_code == 422
    assert "cannot be built" in refused.get_json()["errors"][0]["message"]


def test_a_quote_of_what_the_catalog_asked_for_is_queued_again_at_the_quote_priority(app):
    database = services(app).database
    config = services(app).config
    limit = services(app).build_limit
    enqueued: list[int] = []
    first = builds.request_build(database, config, limit, "quote", "k" * 64, {}, None, enqueued.append, "catalog")
    assert isinstance(first, builds.Preparing) and enqueued == [PRIORITY["catalog"]]
    builds.request_build(database, config, limit, "quote", "k" * 64, {}, "1.2.3.4", enqueued.append, "catalog")
    assert enqueued == [PRIORITY["catalog"]]  # same priority: no second task
    builds.request_build(database, config, limit, "quote", "k" * 64, {}, "1.2.3.4", enqueued.append, "quote")
    assert enqueued == [PRIORITY["catalog"], PRIORITY["quote"]]


def test_concurrent_askers_enqueue_one_build(app):
    database, config, limit = services(app).database, services(app).config, services(app).build_limit
    enqueued: list[int] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        builds.request_build(database, config, limit, "preview", "c" * 64, {}, None, enqueued.append, "preview")

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert enqueued == [PRIORITY["preview"]]


def _order(client, params: dict, address: str = "10.0.1.1") -> dict:
    answer = client.post("/api/v1/orders", json={"customer": {"name": "Snap", "email": "snap@example.com"},
                                                 "items": [{"template": "leg_cap", "params": params,
                                                            "material": "pla"}]},
                         environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_api_orders_snap_millimetre_values_to_the_step_and_say_so_like_the_preview(app, client):
    """33.1 mm and 32.9 mm (sleeve_depth's step is 0.5 mm) are both ordered as 33 mm: one cache key, one build,
    and the answer says what moved, as the preview and the quote do."""
    from web.models import OrderItem

    first, second = _order(client, {"sleeve_depth": 33.1}), _order(client, {"sleeve_depth": "3.29cm"})
    assert first["snapped"] == [{"sleeve_depth": {"given": 33.1, "used": 33.0}}]
    assert second["snapped"] == [{"sleeve_depth": {"given": 32.9, "used": 33.0}}]
    assert first["items"][0]["params"]["sleeve_depth"] == second["items"][0]["params"]["sleeve_depth"] == 33.0
    on_step = _order(client, {"sleeve_depth": 33})
    assert on_step["snapped"] == [{}]
    with services(app).database.session() as session:
        keys = {item.cache_key for item in session.query(OrderItem).all()}
    assert len(keys) == 1  # the three orders share one configuration
    quoted = client.post("/api/v1/quotes", json={"template": "leg_cap", "params": {"sleeve_depth": 33.1}})
    assert quoted.get_json()["params"]["sleeve_depth"] == 33.0  # the order gets what was quoted


def test_api_orders_and_quotes_keep_values_written_in_inches_exact(app, client):
    """A value in inches is kept as given (1.3 in is 33.02 mm, not the 33 mm step), as the configurator keeps a
    form filled in inches; a millimetre value beside it is still snapped."""
    ordered = _order(client, {"sleeve_depth": "1.3in", "sole_thickness": 4.2})
    [moved] = ordered["snapped"]
    assert moved == {"sole_thickness": {"given": 4.2, "used": 4.0}}
    assert ordered["items"][0]["params"]["sleeve_depth"] == 33.02
    quoted = client.post("/api/v1/quotes", json={"template": "leg_cap", "params": {"sleeve_depth": "1.3 in"}})
    assert quoted.status_code in (200, 202) and quoted.get_json()["snapped"] == {}
    assert quoted.get_json()["params"]["sleeve_depth"] == 33.02
    feet = client.post("/api/v1/quotes", json={"template": "leg_cap", "params": {"sleeve_depth": '1 5/16"'}})
    assert feet.get_json()["snapped"] == {} and feet.get_json()["params"]["sleeve_depth"] == 33.3375


def test_plates_come_after_the_pre_sale_builds_and_before_order_renders(app):
    """A customer waiting on the plates page is served after previews and quotes (a sale may hang on those) and
    before order renders and slicing for jobs (minutes each, nobody watching the page for them); a fault that
    gives a plates build back to the queue is told to the customer as ours (``Preparing.fault``)."""
    queue = services(app).queue
    queue.prepare_job(1)
    queue.render_item(1)
    queue.build_plates("l" * 64)
    queue.build_quote("q" * 64)
    queue.build_preview("p" * 64)
    assert [queue.huey.dequeue().name for _ in range(5)] == ["build_preview", "build_quote", "build_plates",
                                                              "render_item", "prepare_job"]
    assert PRIORITY["quote"] > PRIORITY["plates"] > PRIORITY["render"]
    database = services(app).database
    asked: list[int] = []
    first = builds.request_build(database, app.config, services(app).build_limit, "plates", "l" * 64, {}, None,
                                 asked.append, "plates")
    assert isinstance(first, builds.Preparing) and first.fault is None and asked == [PRIORITY["plates"]]
    assert builds.claim(database, "l" * 64, "worker-1") is not None
    assert builds.release(database, "l" * 64, "a fault on our side; trying again")
    again = builds.request_build(database, app.config, services(app).build_limit, "plates", "l" * 64, {}, None,
                                 asked.append, "plates")
    assert isinstance(again, builds.Preparing) and again.fault == "a fault on our side; trying again"
    assert asked == [PRIORITY["plates"]]  # given back to the queue by the worker itself: not enqueued again here


INCHES_SHELF = {"params.width": "762mm", "params.depth": "279.4mm", "params.bracket_height": "150mm", "units": "in",
                "quantity": "1", "material": "birch_plywood"}
"""A 30 x 11 in wall shelf as the configurator's script sends it: exact millimetres, the customer's units beside."""


def test_the_live_quote_of_a_configuration_in_inches_prices_the_previewed_values(app, client):
    """Issue 13 (the browser test of CNC prices found it): in inches the preview and the checkout keep 762 mm, but
    the live quote the preview hands the script was snapped to the 760 mm step: 64.83 EUR in the configurator,
    64.82 EUR at checkout. The quote request now carries the units, and a line in inches is kept exact."""
    preview = client.get(PREVIEW.replace("leg_cap", "wall_shelf"), query_string=INCHES_SHELF).get_json()
    assert (preview["params"]["width"], preview["params"]["depth"]) == (762.0, 279.4)
    request = preview["quote_request"]
    quoted = client.post("/api/v1/quotes", json=request)
    assert quoted.status_code in (200, 202), quoted.get_json()
    assert (quoted.get_json()["params"]["width"], quoted.get_json()["params"]["depth"]) == (762.0, 279.4)
    assert quoted.get_json()["snapped"] == {} and request["units"] == "in"
    in_mm = client.post("/api/v1/quotes", json={**request, "units": "mm"})  # millimetres are still snapped
    assert in_mm.get_json()["params"]["width"] == 760.0


def test_the_checkout_that_waits_for_its_price_keeps_the_exact_values(app, client):
    """The checkout's refreshing page (the price not worked out yet) carried the values as shown again, to 3
    decimals of an inch: 150 mm came back as 5.906 in, 150.0124 mm, another configuration than the one priced."""
    from urllib.parse import parse_qsl, urlsplit

    from .test_pages import csrf_token, form_values, page

    document = page(client.get("/configure/wall_shelf?units=in"))
    values = {**form_values(document, "configurator"), **INCHES_SHELF, "csrf_token": csrf_token(document)}
    waiting = client.post("/configure/wall_shelf", data=values)
    assert waiting.status_code == 202, waiting.data[:300]
    again = waiting.headers["Refresh"].split("url=", 1)[1]
    query = dict(parse_qsl(urlsplit(again).query))
    assert (query["params.width"], query["params.bracket_height"]) == ("762mm", "150mm")
    run_queue(app)
    checkout = page(client.get(again))
    item = json.loads(checkout.xpath("//input[@name='item']/@value")[0])
    assert (item["params"]["width"], item["params"]["bracket_height"]) == (762.0, 150.0)
