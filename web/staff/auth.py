"""Staff accounts: werkzeug password hashes in the users table, HTTP basic auth on staff endpoints.

Both ways of logging in (basic auth on the staff API, the dashboard's form) go through
:func:`log_in`: a client or an account with too many wrong passwords in a row is locked out for a
while (``LOGIN_*`` settings; the counters are in the database, ``web.limits``), every failure and
lockout is logged, and a locked-out login is a 429 with ``Retry-After`` even with the right password.
A script calling the staff API sends its password with every request; hashing it each time costs tens of
milliseconds of CPU that a busy shop's builds need, so a password found right is remembered for
``STAFF_CREDENTIAL_CACHE_SECONDS`` (:class:`VerifiedCredentials`: under a keyed hash, never the password,
and only while the account's stored hash and session version are those it was checked against, so a
new password or a logout ends it at once in every process).
A state-changing request to the staff API from another site's page (its ``Origin`` or ``Referer``
is not this app's) is refused before the credentials are looked at.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, g, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from .. import limits
from ..db import Database
from ..errors import json_errors
from ..models import User

log = logging.getLogger(__name__)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    """A staff account that cannot be created as asked."""


def add_user(database: Database, name: str, password: str) -> None:
    """Create a staff account; raises :class:`UserError` for a bad name, short password or taken name."""
    if not USER_NAME.match(name):
        raise UserError("a user name is 1 to 80 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    try:
        with database.transaction() as session:
            session.add(User(name=name, password_hash=generate_password_hash(password)))
    except IntegrityError:
        raise UserError(f"there is already a user named {name!r}") from None


@functools.cache
def _decoy_hash() -> str:
    return generate_password_hash("decoy password, never valid")


class VerifiedCredentials:
    """Name and password pairs found right lately, for ``ttl_s`` seconds: a keyed hash (HMAC-SHA-256 under a
    key of this process) maps to the account's stored password hash and session version at that check, so
    that a cached pair counts only while both are unchanged (a password change or a logout ends it)."""

    def __init__(self, ttl_s: float, capacity: int = 1024):
        self.ttl_s = float(ttl_s)
        self.capacity = capacity
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[float, str, int]] = {}
        self._lock = threading.Lock()

    def _digest(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, name.encode("utf-8", "surrogatepass") + b"\0"
                        + password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def holds(self, name: str, password: str, stored_hash: str, version: int) -> bool:
        """Whether this pair was found right within ``ttl_s`` against this stored hash and session version."""
        if self.ttl_s <= 0:
            return False
        digest = self._digest(name, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False
            if entry[0] <= time.monotonic():
                del self._entries[digest]
                return False
        return hmac.compare_digest(entry[1], stored_hash) and entry[2] == version

    def remember(self, name: str, password: str, stored_hash: str, version: int) -> None:
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.capacity:
                for digest in [d for d, entry in self._entries.items() if entry[0] <= now] or [
                        next(iter(self._entries))]:
                    del self._entries[digest]
            self._entries[self._digest(name, password)] = (now + self.ttl_s, stored_hash, version)

    def forget(self, name: str, password: str) -> None:
        with self._lock:
            self._entries.pop(self._digest(name, password), None)


def verify(database: Database, name: str, password: str, cache: VerifiedCredentials | None = None) -> bool:
    """Whether the name and password belong to a staff account (as slow for unknown names as for known ones;
    answered without hashing when ``cache`` holds the pair for the account's current hash and session)."""
    with database.session() as session:
        row = session.execute(select(User.password_hash, User.session_version).where(User.name == name)).first()
    if row is None:
        check_password_hash(_decoy_hash(), password)
        return False
    stored, version = row
    if cache is not None and cache.holds(name, password, stored, version):
        return True
    if not check_password_hash(stored, password):
        if cache is not None:
            cache.forget(name, password)
        return False
    if cache is not None:
        cache.remember(name, password, stored, version)
    return True


@dataclass(frozen=True)
class Login:
    """The outcome of a login attempt: ``ok``, or locked out for ``retry_after`` seconds, or neither (wrong)."""

    ok: bool
    retry_after: float | None = None


def log_in(database: Database, config: dict[str, Any], name: str, password: str, client: str, how: str,
           cache: VerifiedCredentials | None = None) -> Login:
    """Check a staff login from ``client`` (its address), counting failures per account and per client;
    ``cache``: the verified credentials a repeated basic-auth login may be answered from."""
    window, lockout = float(config["LOGIN_WINDOW_SECONDS"]), float(config["LOGIN_LOCKOUT_SECONDS"])
    waits = [limits.locked(database, "login-account", name), limits.locked(database, "login-client", client)]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        log.warning("staff login (%s) for %r from %s refused: locked out for %.0f s more", how, name, client, wait)
        return Login(False, wait)
    if verify(database, name, password, cache):
        limits.clear(database, "login-account", name)
        log.info("staff %r logged in (%s) from %s", name, how, client)
        return Login(True)
    waits = [limits.hit(database, "login-account", name, int(config["LOGIN_FAILURES_PER_ACCOUNT"]), window, lockout),
             limits.hit(database, "login-client", client, int(config["LOGIN_FAILURES_PER_CLIENT"]), window, lockout)]
    wait = max((w for w in waits if w is not None), default=None)
    log.warning("staff login (%s) for %r from %s failed: unknown user name or wrong password%s", how, name, client,
                f"; locked out for {wait:.0f} s" if wait is not None else "")
    return Login(False, wait)


def session_version(database: Database, name: str) -> int | None:
    """The account's current session version (``None`` for no such account): a session of another is over."""
    with database.session() as session:
        return session.scalar(select(User.session_version).where(User.name == name))


def end_sessions(database: Database, name: str) -> None:
    """End every session of the account (logout): its session version moves on."""
    with database.transaction() as session:
        session.execute(update(User).where(User.name == name).values(session_version=User.session_version + 1))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else url.lower()


def own_origins() -> set[str]:
    """The origins this app's pages are served from: the request's own host, ``PUBLIC_URL`` and ``ALLOWED_ORIGINS``."""
    config = current_app.config
    return {_origin(request.host_url), _origin(str(config.get("PUBLIC_URL") or "")),
            *(_origin(str(origin)) for origin in config.get("ALLOWED_ORIGINS") or ())}


def cross_origin() -> str | None:
    """The foreign origin a state-changing request came from (its ``Origin``, else its ``Referer``), or ``None``."""
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get("Origin") or request.headers.get("Referer")
    if not sent:
        return None  # not sent by a browser from a page: a script or curl with the credentials
    origin = _origin(sent)
    return None if origin in own_origins() else origin


def verified_credentials() -> VerifiedCredentials:
    """This app's cache of staff API credentials found right lately."""
    extensions = current_app.extensions
    if "staff_credentials" not in extensions:
        extensions.setdefault("staff_credentials",
                              VerifiedCredentials(float(current_app.config["STAFF_CREDENTIAL_CACHE_SECONDS"])))
    return extensions["staff_credentials"]


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse the request unless it carries a staff account's HTTP basic credentials (401), comes from no other
    site (403), and neither the account nor the client is locked out for wrong passwords (429)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        foreign = cross_origin()
        if foreign is not None:
            log.warning("staff API %s %s refused: sent from another site (%s)", request.method, request.path,
                        foreign)
            return json_errors(403, f"the staff API does not take requests sent from another site ({foreign}); "
                                    "use the staff dashboard, or call the API from a script", "Origin")
        credentials = request.authorization
        services = current_app.extensions["parametric"]
        login = None
        if credentials is not None and credentials.type == "basic" and credentials.username:
            login = log_in(services.database, services.config, credentials.username, credentials.password or "",
                           limits.client_address(), "basic auth", verified_credentials())
            if login.retry_after is not None:
                return limits.too_many(login.retry_after, "too many wrong staff passwords from this client or for "
                                       f"this account; try again in {limits.in_words(login.retry_after)}",
                                       "Authorization")
        if login is None or not login.ok:
            response = jsonify(errors=[{"field": "Authorization",
                                        "message": "staff only: log in with a staff account (HTTP basic auth); "
                                                   "accounts are made with `parametric users add NAME`"}])
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="parametric staff", charset="UTF-8"'
            return response
        g.staff_user = credentials.username
        return view(*args, **kwargs)

    return wrapped
