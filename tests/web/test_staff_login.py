"""Staff login under attack, on SQLite and on a real PostgreSQL server: brute force on basic auth and on
the form ends in a lockout (429 with Retry-After, logged, kept in the database so every process sees
it); a session cookie copied before logout opens nothing after it; the cookie is SameSite=Lax and, behind
HTTPS, Secure; the staff API refuses state-changing requests from another site's page."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web import create_app
from web.staff.auth import add_user

from .conftest import STAFF, order_body, services, test_config
from .live import postgres_database
from .test_pages import csrf_token, form_values, page

LIMITS = {"LOGIN_FAILURES_PER_ACCOUNT": 4, "LOGIN_FAILURES_PER_CLIENT": 7, "LOGIN_WINDOW_SECONDS": 600,
          "LOGIN_LOCKOUT_SECONDS": 600}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    with postgres_database() as url:
        yield url


def make_app(tmp_path: Path, cache_folder: Path, database_url: str, **overrides: Any) -> Flask:
    app = create_app(test_config(tmp_path, cache_folder, DATABASE_URL=database_url, **{**LIMITS, **overrides}))
    services(app).database.upgrade()
    return app


@pytest.fixture
def login_app(tmp_path: Path, cache_folder: Path, database_url: str) -> Iterator[Flask]:
    app = make_app(tmp_path, cache_folder, database_url)
    add_user(services(app).database, *STAFF)
    yield app
    services(app).database.dispose()


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def from_address(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def form_login(client: FlaskClient, name: str, password: str) -> Any:
    form = form_values(page(client.get("/staff/login")))
    return client.post("/staff/login", data={**form, "name": name, "password": password})


def test_basic_auth_brute_force_is_locked_out(login_app, caplog):
    client = from_address(login_app, "198.51.100.7")
    caplog.set_level(logging.WARNING, logger="web.staff.auth")
    statuses = [client.get("/api/v1/staff/queue", headers=basic(STAFF[0], f"guess {n}")).status_code
                for n in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    right = client.get("/api/v1/staff/queue", headers=basic(*STAFF))
    assert right.status_code == 429, "the right password after a brute force is still refused while locked out"
    assert 590 <= int(right.headers["Retry-After"]) <= 600
    problem = right.get_json()["errors"][0]
    assert problem["field"] == "Authorization" and "try again in 10 minutes" in problem["message"]
    assert "locked out" in caplog.text and "198.51.100.7" in caplog.text
    # The account is locked for everyone: another address with the right password waits too.
    assert from_address(login_app, "203.0.113.9").get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 429


def test_one_client_guessing_many_accounts_is_locked_out(login_app):
    client = from_address(login_app, "198.51.100.8")
    statuses = [client.get("/api/v1/staff/queue", headers=basic(f"user{n}", "guess")).status_code for n in range(8)]
    assert statuses == [401] * 7 + [429]
    assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 429
    assert from_address(login_app, "203.0.113.10").get("/api/v1/staff/queue",
                                                       headers=basic(*STAFF)).status_code == 200


def test_form_brute_force_is_locked_out(login_app):
    client = from_address(login_app, "198.51.100.9")
    statuses = [form_login(client, STAFF[0], f"guess {n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    locked = form_login(client, *STAFF)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "locked for 10 minutes" in locked.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302  # not logged in


def test_the_lockout_is_shared_by_every_process_and_ends(tmp_path, cache_folder, database_url):
    first = make_app(tmp_path / "a", cache_folder, database_url, LOGIN_LOCKOUT_SECONDS=1)
    second = make_app(tmp_path / "b", cache_folder, database_url, LOGIN_LOCKOUT_SECONDS=1)
    add_user(services(first).database, *STAFF)
    try:
        for _ in range(5):
            from_address(first, "198.51.100.10").get("/api/v1/staff/queue", headers=basic(STAFF[0], "guess"))
        assert from_address(second, "203.0.113.11").get("/api/v1/staff/queue",
                                                        headers=basic(*STAFF)).status_code == 429
        time.sleep(1.2)
        assert from_address(second, "203.0.113.11").get("/api/v1/staff/queue",
                                                        headers=basic(*STAFF)).status_code == 200
    finally:
        services(first).database.dispose()
        services(second).database.dispose()


def test_a_right_login_forgives_earlier_mistakes(login_app):
    client = from_address(login_app, "198.51.100.11")
    for _ in range(3):
        assert client.get("/api/v1/staff/queue", headers=basic(STAFF[0], "typo")).status_code == 401
    assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 200
    for _ in range(3):
        assert client.get("/api/v1/staff/queue", headers=basic(STAFF[0], "typo")).status_code == 401
    assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 200


def test_a_checked_staff_password_is_remembered_briefly_and_forgotten_when_it_changes_or_on_logout(login_app):
    """Basic auth sends the password with every request; hashing it each time costs CPU a busy shop needs, so a
    right one is remembered (under a keyed hash) only while the account's password hash and session are the ones
    it was checked against, and for a short time."""
    from sqlalchemy import select, update
    from werkzeug.security import check_password_hash, generate_password_hash

    from web.models import User
    from web.staff.auth import end_sessions

    database = services(login_app).database
    client = from_address(login_app, "198.51.100.20")

    def remembered(password: str) -> bool:
        with database.session() as session:
            stored, version = session.execute(select(User.password_hash, User.session_version)
                                              .where(User.name == STAFF[0])).one()
        return login_app.extensions["staff_credentials"].holds(STAFF[0], password, stored, version)

    assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 200
    assert remembered(STAFF[1]) and not remembered("another password")
    cache = login_app.extensions["staff_credentials"]
    assert all(STAFF[1].encode() not in key and STAFF[0].encode() not in key for key in cache._entries)
    started = time.perf_counter()
    check_password_hash(generate_password_hash("timing"), "timing")
    hashing = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(5):
        assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 200
    print(f"\nstaff API: one password hash {hashing * 1000:.0f} ms; five remembered logins "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")

    with database.transaction() as session:  # the password is changed (another process, e.g. the command line)
        session.execute(update(User).where(User.name == STAFF[0])
                        .values(password_hash=generate_password_hash("a brand new password")))
    assert client.get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 401
    assert client.get("/api/v1/staff/queue", headers=basic(STAFF[0], "a brand new password")).status_code == 200
    assert remembered("a brand new password")
    end_sessions(database, STAFF[0])  # a logout ends what was remembered too
    assert not remembered("a brand new password")
    assert client.get("/api/v1/staff/queue", headers=basic(STAFF[0], "a brand new password")).status_code == 200
    for _ in range(7):  # a client locked out is refused even with a remembered password
        client.get("/api/v1/staff/queue", headers=basic(f"someone{_}", "guess"))
    assert client.get("/api/v1/staff/queue", headers=basic(STAFF[0], "a brand new password")).status_code == 429


def test_a_remembered_staff_password_expires(tmp_path, cache_folder, database_url):
    app = make_app(tmp_path, cache_folder, database_url, STAFF_CREDENTIAL_CACHE_SECONDS=0.3)
    add_user(services(app).database, *STAFF)
    try:
        assert from_address(app, "198.51.100.21").get("/api/v1/staff/queue", headers=basic(*STAFF)).status_code == 200
        assert len(app.extensions["staff_credentials"]._entries) == 1
        time.sleep(0.4)
        with services(app).database.session() as session:
            from sqlalchemy import select

            from web.models import User

            stored, version = session.execute(select(User.password_hash, User.session_version)).one()
        assert not app.extensions["staff_credentials"].holds(STAFF[0], STAFF[1], stored, version)
    finally:
        services(app).database.dispose()


# -- sessions ------------------------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_opens_nothing_after_it(login_app):
    browser = login_app.test_client()
    assert form_login(browser, *STAFF).status_code == 303
    cookie = browser.get_cookie("session")
    assert cookie is not None
    thief = login_app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/staff/").status_code == 200  # the copy works while the session lasts
    logout = browser.post("/staff/logout", data={"csrf_token": csrf_token(page(browser.get("/staff/")))})
    assert logout.status_code == 303
    assert thief.get("/staff/").status_code == 302
    assert thief.get("/staff/manufacturing").status_code == 302
    assert form_login(browser, *STAFF).status_code == 303 and browser.get("/staff/").status_code == 200


def test_the_session_cookie_is_samesite_lax_and_secure_behind_https(tmp_path, cache_folder, database_url):
    def cookie_header(app: Flask, **environ: Any) -> str:
        """The session cookie the login page sets (it holds the form's CSRF token)."""
        response = app.test_client().get("/staff/login", **environ)
        services(app).database.dispose()
        return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("session="))

    plain = cookie_header(make_app(tmp_path / "a", cache_folder, database_url))
    assert "SameSite=Lax" in plain and "HttpOnly" in plain and "Secure" not in plain
    https = cookie_header(make_app(tmp_path / "b", cache_folder, f"sqlite:///{tmp_path / 'b.db'}",
                                   PREFERRED_URL_SCHEME="https"))
    assert "Secure" in https and "SameSite=Lax" in https
    proxied = cookie_header(make_app(tmp_path / "c", cache_folder, f"sqlite:///{tmp_path / 'c.db'}", PROXY_COUNT=1),
                            headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied
    untrusted = cookie_header(make_app(tmp_path / "d", cache_folder, f"sqlite:///{tmp_path / 'd.db'}"),
                              headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in untrusted  # no proxy is trusted by default


# -- cross-origin requests to the staff API ---------------------------------------------------------------


def test_the_staff_api_refuses_state_changing_requests_from_another_site(login_app):
    client = login_app.test_client()
    database = services(login_app).database
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page.html"},
                    {"Origin": "null"}):
        for path in ("/api/v1/staff/jobs/1/done", "/api/v1/staff/items/1/retry"):
            response = client.post(path, headers={**basic(*STAFF), **headers})
            assert response.status_code == 403, (path, headers)
            assert response.get_json()["errors"][0]["field"] == "Origin"
        delete = client.delete("/api/v1/staff/machines/mk4", headers={**basic(*STAFF), **headers})
        assert delete.status_code == 403
    # The app's own pages, and scripts that send no Origin, are let through to the view (no such job: 404).
    for headers in ({"Origin": "http://localhost"}, {"Referer": "http://localhost/staff/"}, {},
                    {"Origin": "http://127.0.0.1:8000"}):
        assert client.post("/api/v1/staff/jobs/1/done", headers={**basic(*STAFF), **headers}).status_code == 404
    # Reading is not refused: a cross-site page cannot read the answer anyway.
    assert client.get("/api/v1/staff/queue", headers={**basic(*STAFF), "Origin": "https://evil.example"}
                      ).status_code == 200
    assert database is not None


def test_an_order_placed_across_sites_with_a_form_is_refused(client):
    """The public API is JSON only: a cross-site HTML form (text/plain) cannot place an order."""
    import json

    response = client.post("/api/v1/orders", data=json.dumps(order_body()), content_type="text/plain",
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 415
