"""Builds that pages ask for (previews, quotes, catalog pictures), made by the workers and never by a
request thread.

A request that finds nothing in the cache calls :func:`ask`: the first request for a key records it
(``queued``) and the caller enqueues the task; later ones see it queued or running and only wait. A
request of a higher priority than the one recorded (a customer's quote of what the catalog asked for
at its low priority) is enqueued again at its own priority; the task that runs second finds the build
done and returns. The worker claims it (:func:`claim`), records the outcome (:func:`finish`,
:func:`fail`) and how long it took, which the quotes' lead time uses (:func:`mean_seconds`).
A build whose worker died is given back to the queue by the reaper (:func:`release`), and finished
records are forgotten after ``BUILD_RECORD_DAYS`` (:func:`prune`).

:func:`request_build` is what a view calls: the answer when there is one, :class:`Preparing` (with
when to ask again) while a worker builds it, :class:`BuildFailed` with the reason when it cannot be
built; a client asking for more new builds than ``BUILD_LIMIT`` per ``BUILD_LIMIT_SECONDS`` is refused
(``web.limits.RateLimited``) before anything is queued. It never imports the queue or Flask: the caller
passes how to enqueue.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from .db import Database
from .limits import ClientLimit
from .models import Build, utcnow
from .priorities import PRIORITY


@dataclass(frozen=True)
class Preparing:
    """A build a worker is making (or will make): ask again after ``retry_after`` seconds. ``fault`` says why
    it is being made again when a worker's attempt failed for a reason of ours (a crash, a full disk): it is
    retried, never the customer's to fix."""

    key: str
    state: str
    retry_after: int
    fault: str | None = None


class BuildFailed(Exception):
    """The configuration cannot be built; ``reason`` says why in the customer's words."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def build_key(kind: str, *parts: Any) -> str:
    """The key of a build: a hash of its kind and what it is made from."""
    text = json.dumps([kind, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Asked:
    """What :func:`ask` found: the build's state, whether the caller must enqueue it, and its record."""

    state: str
    enqueue: bool
    result: dict[str, Any] | None = None
    reason: str | None = None


def request_build(database: Database, config: Mapping[str, Any], limit: ClientLimit, kind: str, key: str,
                  request: dict[str, Any], client: str | None, enqueue: Callable[[int], Any],
                  priority_name: str, require_space: Callable[[], None] | None = None) -> dict[str, Any] | Preparing:
    """A finished build's result (``{}`` when it has none), or :class:`Preparing` after making sure a worker
    will build it; :class:`BuildFailed` when it cannot be built. Only a new build counts against the
    client's limit; asking about one already queued does not (nor does the shop's own ``client=None``).
    ``require_space`` (the render cache's check) runs before a build is asked for: a full or read-only disk is
    a fault of ours, answered at once (503), not a build queued to fail."""
    priority = PRIORITY[priority_name]
    retry_after = max(1, int(config["BUILD_POLL_SECONDS"]))
    found = find(database, key)
    if found is not None and found.state == "done":
        return dict(found.result or {})
    if found is not None and found.state == "failed":
        raise BuildFailed(found.reason or "this configuration cannot be built")
    if require_space is not None:
        require_space()
    if found is None and client is not None:
        limit.take(client)
    asked = ask(database, key, kind, request, priority, float(config["BUILD_STALE_SECONDS"]))
    if asked.state == "done":
        return dict(asked.result or {})
    if asked.state == "failed":
        raise BuildFailed(asked.reason or "this configuration cannot be built")
    if asked.enqueue:
        try:
            enqueue(priority)
        except Exception:
            forget(database, key)  # the next request asks again
            raise
    return Preparing(key, asked.state, retry_after,
                     found.reason if found is not None and found.state in ("queued", "running") else None)


def find(database: Database, key: str) -> Build | None:
    with database.session() as session:
        return session.get(Build, key)


def ask(database: Database, key: str, kind: str, request: dict[str, Any], priority: int,
        stale_s: float) -> Asked:
    """Record that ``key`` is wanted at ``priority``. ``enqueue`` is true for the caller that must hand it to
    the queue: the first asker, one asking at a higher priority, or one finding a record that waited
    longer than ``stale_s`` without a worker starting it (its task was lost)."""
    now = utcnow()
    try:
        with database.transaction() as session:
            session.add(Build(key=key, kind=kind, state="queued", priority=priority, request=request,
                              attempts=0, requested_at=now))
        return Asked("queued", True)
    except IntegrityError:
        pass
    found = find(database, key)
    if found is None:  # forgotten between the insert and the read
        return ask(database, key, kind, request, priority, stale_s)
    if found.state in ("done", "failed"):
        return Asked(found.state, False, found.result, found.reason)
    lost = found.state == "queued" and found.requested_at < now - timedelta(seconds=stale_s)
    if priority > found.priority or lost:
        with database.transaction() as session:
            result = session.execute(update(Build).where(Build.key == key, Build.state == found.state,
                                                         Build.priority == found.priority)
                                     .values(priority=max(priority, found.priority), requested_at=now)
                                     .execution_options(synchronize_session=False))
        return Asked(found.state, result.rowcount == 1)
    return Asked(found.state, False)


def claim(database: Database, key: str, worker: str) -> Build | None:
    """Take a queued build for this worker; ``None`` if it is done, failed, gone or another worker has it."""
    with database.transaction() as session:
        result = session.execute(update(Build).where(Build.key == key, Build.state == "queued")
                                 .values(state="running", worker=worker, started_at=utcnow(),
                                         attempts=Build.attempts + 1)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            return None
        return session.get(Build, key)


def finish(database: Database, key: str, worker: str, result: dict[str, Any] | None, seconds: float) -> bool:
    with database.transaction() as session:
        done = session.execute(update(Build).where(Build.key == key, Build.state == "running",
                                                   Build.worker == worker)
                               .values(state="done", result=result, reason=None, seconds=seconds,
                                       finished_at=utcnow())
                               .execution_options(synchronize_session=False))
        return done.rowcount == 1


def fail(database: Database, key: str, worker: str, reason: str) -> bool:
    """The configuration cannot be built (the kernel's reason); the page shows it."""
    with database.transaction() as session:
        done = session.execute(update(Build).where(Build.key == key, Build.state == "running",
                                                   Build.worker == worker)
                               .values(state="failed", reason=reason, finished_at=utcnow())
                               .execution_options(synchronize_session=False))
        return done.rowcount == 1


def release(database: Database, key: str, reason: str | None = None) -> bool:
    """Put a running build back to queued (its worker died or hit a fault that is not the customer's),
    so the next worker takes it."""
    with database.transaction() as session:
        done = session.execute(update(Build).where(Build.key == key, Build.state == "running")
                               .values(state="queued", worker=None, started_at=None, reason=reason,
                                       requested_at=utcnow())
                               .execution_options(synchronize_session=False))
        return done.rowcount == 1


def forget(database: Database, key: str) -> None:
    """Drop a record (a fault not the customer's: the next request asks again)."""
    with database.transaction() as session:
        session.execute(delete(Build).where(Build.key == key))


def mean_seconds(database: Database, kind: str, last: int = 50) -> float | None:
    """Mean time of the last ``last`` builds of ``kind``, or ``None`` before any was timed."""
    with database.session() as session:
        recent = (select(Build.seconds).where(Build.kind == kind, Build.seconds.is_not(None))
                  .order_by(Build.finished_at.desc()).limit(last).subquery())
        mean = session.scalar(select(func.avg(recent.c.seconds)))
    return float(mean) if mean is not None else None


def waiting(database: Database) -> dict[str, int]:
    """Builds queued or running, by kind."""
    with database.session() as session:
        return dict(session.execute(select(Build.kind, func.count()).where(Build.state.in_(("queued", "running")))
                                    .group_by(Build.kind)).all())


def prune(database: Database, days: float) -> int:
    """Forget finished builds older than ``days`` (a later request builds again, usually from the cache)."""
    cutoff = utcnow() - timedelta(days=days)
    with database.transaction() as session:
        result = session.execute(delete(Build).where(Build.state.in_(("done", "failed")), Build.finished_at < cutoff))
        return result.rowcount
