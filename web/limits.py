"""Rate limits and lockouts, kept in the database (the ``rate_limits`` table), so that every process of
the shop, on SQLite or PostgreSQL, counts the same hits.

A limit counts hits per scope (``login-account``, ``login-client``, ``orders``, ``builds``: new previews
and quotes, :class:`ClientLimit`) and subject in a fixed
window; the hit that goes over the limit locks the subject out for the lockout time (a login) or
until the window ends (orders). Subjects are stored as SHA-256 digests (a user name an
attacker made up can be any length). The client is identified by its address as this app sees it:
``request.remote_addr``, which is the address before a proxy only when ``PROXY_COUNT`` says how many
proxies in front of the app may be trusted to tell it (``X-Forwarded-For``).
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from .models import RateLimit, utcnow

if TYPE_CHECKING:
    from flask import Response

    from .db import Database


def client_address() -> str:
    """The client's address, the identity rate limits and idempotency keys are kept under."""
    from flask import request

    return (request.remote_addr or "unknown")[:64]


def _subject(subject: str) -> str:
    return hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()


def locked(database: Database, scope: str, subject: str) -> float | None:
    """Seconds until ``subject`` may try again in ``scope``, or ``None`` when it is not locked out."""
    with database.session() as session:
        row = session.get(RateLimit, (scope, _subject(subject)))
    now = utcnow()
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return (row.locked_until - now).total_seconds()


def hit(database: Database, scope: str, subject: str, limit: int, window_seconds: float,
        lockout_seconds: float = 0.0) -> float | None:
    """Count one hit; the seconds to wait when ``subject`` is (now) over ``limit`` hits per window, else ``None``."""
    key = (scope, _subject(subject))
    for attempt in range(2):  # a first hit racing another process's first hit: the loser counts on its row
        try:
            with database.transaction() as session:
                now = utcnow()
                row = session.get(RateLimit, key, with_for_update=True)
                if row is None:
                    row = RateLimit(scope=key[0], subject=key[1], hits=0, window_started_at=now, locked_until=None)
                    session.add(row)
                elif now >= row.window_started_at + timedelta(seconds=window_seconds):
                    row.hits, row.window_started_at = 0, now
                row.hits += 1
                if row.hits > limit:
                    until = (now + timedelta(seconds=lockout_seconds) if lockout_seconds > 0
                             else row.window_started_at + timedelta(seconds=window_seconds))
                    row.locked_until = max(row.locked_until or until, until)
                if row.locked_until is not None and row.locked_until > now:
                    return (row.locked_until - now).total_seconds()
                return None
        except IntegrityError:
            if attempt:
                raise
    return None


def clear(database: Database, scope: str, subject: str) -> None:
    """Forget ``subject``'s hits in ``scope`` (a staff member who logged in); no write when there are none."""
    with database.session() as session:
        if session.get(RateLimit, (scope, _subject(subject))) is None:
            return
    with database.transaction() as session:
        session.execute(delete(RateLimit).where(RateLimit.scope == scope, RateLimit.subject == _subject(subject)))


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header's value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))


def too_many(seconds: float, message: str, field: str = "") -> Response:
    """The API's 429: the error in its usual shape and ``Retry-After``."""
    from .errors import json_errors

    response = json_errors(429, message, field)
    response.headers["Retry-After"] = retry_after(seconds)
    return response


def in_words(seconds: float) -> str:
    """``"2 minutes"``, ``"40 seconds"``: how long to wait, for a message."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minutes"


class RateLimited(Exception):
    """Too many new builds (previews, quotes) from one client: ``retry_after`` seconds until the next is allowed."""

    def __init__(self, retry_after: int, limit: int, window_s: float):
        self.retry_after, self.limit, self.window_s = retry_after, limit, window_s
        super().__init__(f"too many new configurations from your address: at most {limit} every "
                         f"{window_s:g} s are prepared; please try again in {retry_after} s")


class ClientLimit:
    """At most ``limit`` new builds per client in a window of ``window_s`` seconds (the ``builds`` scope of the
    rate limits table, so every web process counts the same hits)."""

    SCOPE = "builds"

    def __init__(self, database: Database, limit: int, window_s: float):
        self.database, self.limit, self.window_s = database, max(0, int(limit)), float(window_s)

    def take(self, client: str) -> None:
        """Count one new build for ``client``, or raise :class:`RateLimited` (counted too: hammering does not help)."""
        wait = hit(self.database, self.SCOPE, client, self.limit, self.window_s)
        if wait is not None:
            raise RateLimited(max(1, math.ceil(wait)), self.limit, self.window_s)
