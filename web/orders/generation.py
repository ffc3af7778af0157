"""Generating an order item's files: claim it with a lease, render through the core, record the files.

A queue task (``web.tasks``) calls :meth:`Generation.run` with an item id. The item is
claimed with a conditional UPDATE (queued, or rendering with an expired lease → rendering,
owned by this process), a heartbeat thread renews the lease while ``parametric.render``
works, and the files are recorded in the same transaction that marks the item ready. A
worker killed mid-render stops renewing; :meth:`Generation.reap` (a periodic task, and
``serve`` at start-up) queues such an item again. Rendering twice is harmless: the core's
content-addressed cache returns the same files, and builds one key once across processes.

This module knows the database and the core; it never imports the queue or Flask.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

import parametric
from parametric.cache import Cache, cache_key
from parametric.errors import CUSTOMER_FAULT_MESSAGE, InfrastructureError, infrastructure_fault
from parametric.export import ExportSettings

from ..db import Database
from ..models import Artifact, Job, OrderItem, utcnow

log = logging.getLogger(__name__)

GAVE_UP_MESSAGE = ("we could not prepare this item's files (the fault is ours, not your configuration's); "
                   "our workshop has been told and will be in touch")
"""What a customer reads of an item that failed for good through a fault of ours (staff see ``last_error``)."""

Enqueue = Callable[[int], Any]


@dataclass(frozen=True)
class Claim:
    """An item this process holds a lease on, with what it needs to render it."""

    item_id: int
    owner: str
    order_id: str
    position: int
    template: str
    template_version: str
    params: dict[str, Any]
    material: str
    attempts: int


def item_folder(output_folder: str | Path, order_id: str, position: int) -> Path:
    """Where an item's files are placed: ``<output>/orders/<order id>/<position>``."""
    return Path(output_folder) / "orders" / order_id / str(position)


class Generation:
    """Background generation of order items, configured from the app's configuration mapping."""

    def __init__(self, config: Mapping[str, Any], database: Database | None = None):
        self.config = config
        self.database = database or Database(config["DATABASE_URL"])
        self.output_folder = Path(config["OUTPUT_FOLDER"])
        self.cache = Cache(Path(config["CACHE_FOLDER"]), max_bytes=config.get("CACHE_MAX_BYTES") or 0,
                           min_age_s=float(config.get("CACHE_MIN_AGE_SECONDS", 600.0)),
                           min_free_bytes=int(config.get("CACHE_MIN_FREE_BYTES", 0)), protected=self.needed_keys)
        self.render_timeout = float(config.get("RENDER_TIMEOUT_SECONDS", 0)) or 0.0
        self.formats = tuple(config["ORDER_FORMATS"])
        self.settings = ExportSettings(tolerance=float(config["EXPORT_TOLERANCE"]),
                                       angular_tolerance=float(config["EXPORT_ANGULAR_TOLERANCE"]))
        self.lease = timedelta(seconds=float(config["LEASE_SECONDS"]))
        self.heartbeat_seconds = float(config["HEARTBEAT_SECONDS"])
        self.max_attempts = int(config["RENDER_ATTEMPTS"])

    # -- the job ------------------------------------------------------------------------

    def run(self, item_id: int) -> str:
        """Generate one item's files. Returns ``ready``, ``failed``, ``retry`` (try again later), ``wait`` (a fault
        of ours such as a full disk: try again after ``FAULT_RETRY_SECONDS``, no attempt used) or ``skipped``."""
        claim = self.claim(item_id)
        if claim is None:
            return "skipped"
        started = time.perf_counter()
        try:
            with Heartbeat(self, claim):
                manifest = self.render(claim)
        except parametric.GeometryError as error:
            return self._failed(claim, error.reason)
        except parametric.ValidationError as error:  # the stored parameters no longer validate
            return self._failed(claim, f"the template refused the stored parameters: {error}", final=True)
        except Exception as error:  # a disk, database or kernel problem: try again
            fault = infrastructure_fault(error)
            if fault is not None:
                return self._fault(claim, fault)
            log.exception("rendering item %s failed", item_id)
            return self._failed(claim, CUSTOMER_FAULT_MESSAGE, detail=f"{type(error).__name__}: {error}",
                                gave_up=GAVE_UP_MESSAGE)
        seconds = None if manifest.cache_hit else time.perf_counter() - started
        return "ready" if self.finish(claim, manifest, seconds) else "skipped"

    def render(self, claim: Claim) -> parametric.Manifest:
        """The core's render of the claimed item into its folder (a cache hit only links files)."""
        template = parametric.get_template(claim.template)
        if template.version != claim.template_version:
            raise RuntimeError(f"this order was made with {claim.template} {claim.template_version}, "
                               f"but this worker has version {template.version}")
        return parametric.render(claim.template, claim.params,
                                 out_dir=item_folder(self.output_folder, claim.order_id, claim.position),
                                 formats=self.formats, material=claim.material, settings=self.settings,
                                 cache=self.cache, timeout=self.render_timeout)

    def key(self, template: parametric.Template, canonical: dict[str, Any]) -> str:
        return cache_key(template.id, template.version, canonical, self.settings.as_dict())

    def is_cached(self, template: parametric.Template, canonical: dict[str, Any]) -> bool:
        """Whether every order format of this configuration is in the cache (reads JSON only)."""
        return self.cache.lookup(self.key(template, canonical), self.formats) is not None

    def needed_keys(self) -> set[str]:
        """Cache keys that work still waits for, which the cache's eviction keeps: items not yet rendered,
        and ready items whose jobs are not prepared yet (a job sheet may take its drawing from the cache).
        Delivered files are the orders' own copies, so nothing else needs the cache."""
        with self.database.session() as session:
            waiting = session.scalars(select(OrderItem.cache_key).where(
                OrderItem.state.in_(("queued", "rendering")), OrderItem.cache_key.is_not(None))).all()
            preparing = session.scalars(select(OrderItem.cache_key).join(Job, Job.item_id == OrderItem.id).where(
                Job.state.in_(("queued", "slicing")), OrderItem.cache_key.is_not(None))).all()
        return {*waiting, *preparing}

    def tidy(self) -> dict[str, int]:
        """Remove what interrupted builds left in the cache and keep it under its size limit."""
        swept = self.cache.sweep()
        evicted = self.cache.evict()
        return {"swept": len(swept), "evicted": len(evicted)}

    # -- leases ---------------------------------------------------------------------------

    def claim(self, item_id: int) -> Claim | None:
        """Take the item if it is queued, or rendering under an expired lease; ``None`` if someone else has it."""
        now = utcnow()
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with self.database.transaction() as session:
            result = session.execute(
                update(OrderItem)
                .where(OrderItem.id == item_id, OrderItem.attempts < self.max_attempts,
                       or_(OrderItem.state == "queued",
                           and_(OrderItem.state == "rendering", OrderItem.lease_expires_at < now)))
                .values(state="rendering", attempts=OrderItem.attempts + 1, lease_owner=owner,
                        lease_expires_at=now + self.lease, heartbeat_at=now, started_at=now)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            item = session.get(OrderItem, item_id)
            assert item is not None
            return Claim(item.id, owner, item.order_id, item.position, item.template, item.template_version,
                         dict(item.params), item.material, item.attempts)

    def renew(self, claim: Claim) -> bool:
        """Extend the lease; ``False`` when this process no longer holds it."""
        now = utcnow()
        with self.database.transaction() as session:
            result = session.execute(
                update(OrderItem)
                .where(OrderItem.id == claim.item_id, OrderItem.lease_owner == claim.owner,
                       OrderItem.state == "rendering")
                .values(heartbeat_at=now, lease_expires_at=now + self.lease)
                .execution_options(synchronize_session=False))
            return result.rowcount == 1

    def finish(self, claim: Claim, manifest: parametric.Manifest, seconds: float | None) -> bool:
        """Record the files and mark the item ready, unless another process already did."""
        folder = item_folder(self.output_folder, claim.order_id, claim.position)
        records = [(r["format"], r["part"], r["filename"], r["bytes"], r["sha256"]) for r in manifest.files]
        if manifest.path is not None:
            data = Path(manifest.path).read_bytes()
            records.append(("manifest", "", Path(manifest.path).name, len(data), hashlib.sha256(data).hexdigest()))
        relative = folder.relative_to(self.output_folder)
        with self.database.transaction() as session:
            result = session.execute(
                update(OrderItem)
                .where(OrderItem.id == claim.item_id, OrderItem.state.in_(("queued", "rendering")))
                .values(state="ready", reason=None, last_error=None, cache_key=manifest.cache_key, lease_owner=None,
                        rendered_by=claim.owner,
                        lease_expires_at=None, finished_at=utcnow(), render_seconds=seconds)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return False
            session.execute(delete(Artifact).where(Artifact.item_id == claim.item_id))
            session.add_all(Artifact(item_id=claim.item_id, format=format_, part=part, filename=filename,
                                     path=str(relative / filename), bytes=size, sha256=digest)
                            for format_, part, filename, size, digest in records)
        return True

    def _failed(self, claim: Claim, reason: str, final: bool = False, *, detail: str | None = None,
                gave_up: str | None = None) -> str:
        """Queue the item for another try, or mark it failed when its attempts are used up.

        ``reason`` is what the customer reads (plain words, no server detail), ``detail`` what staff read
        (``last_error``); ``gave_up`` replaces ``reason`` when this was the last attempt."""
        final = final or claim.attempts >= self.max_attempts
        now = utcnow()
        values: dict[str, Any] = {"reason": (gave_up or reason) if final else reason,
                                  "last_error": detail or reason, "lease_owner": None, "lease_expires_at": None}
        if final:
            values.update(state="failed", finished_at=now)
        else:
            values.update(state="queued", enqueued_at=now, heartbeat_at=now)
        if not self._release(claim, values):
            return "skipped"  # the lease was lost: whoever holds it now decides
        log.warning("item %s attempt %s failed%s: %s", claim.item_id, claim.attempts,
                    "" if not final else " for good", detail or reason)
        return "failed" if final else "retry"

    def _fault(self, claim: Claim, fault: InfrastructureError) -> str:
        """A fault of ours (a full or read-only disk, a missing tool, a timeout), logged for staff.

        A timeout or a crash uses up an attempt (the same input may do it again): after the last one the
        item fails, the customer reading :data:`GAVE_UP_MESSAGE`. Any other fault is no reason to give up:
        the item is queued again without using an attempt, and tried until the fault clears."""
        detail = f"{fault.kind}: {fault.reason}"
        log.error("item %s: %s", claim.item_id, detail)
        if fault.counts_as_attempt:
            return self._failed(claim, CUSTOMER_FAULT_MESSAGE, detail=detail, gave_up=GAVE_UP_MESSAGE)
        now = utcnow()
        values: dict[str, Any] = {"state": "queued", "reason": None, "last_error": detail, "lease_owner": None,
                                  "lease_expires_at": None, "enqueued_at": now, "heartbeat_at": now,
                                  "attempts": OrderItem.attempts - 1}
        return "wait" if self._release(claim, values) else "skipped"

    def _release(self, claim: Claim, values: dict[str, Any]) -> bool:
        """Apply ``values`` to the claimed item if this process still holds its lease."""
        with self.database.transaction() as session:
            result = session.execute(
                update(OrderItem)
                .where(OrderItem.id == claim.item_id, OrderItem.lease_owner == claim.owner,
                       OrderItem.state == "rendering")
                .values(**values)
                .execution_options(synchronize_session=False))
        return result.rowcount == 1

    # -- handing items to the queue ----------------------------------------------------------

    def start(self, item_ids: Iterable[int], enqueue: Enqueue) -> None:
        """Start new items: one whose files are all cached is finished here (linking files, no kernel),
        the others are handed to the queue."""
        pending = []
        for item_id in item_ids:
            with self.database.session() as session:
                item = session.get(OrderItem, item_id)
                cached = (item is not None and item.state == "queued" and item.cache_key is not None
                          and self.cache.lookup(item.cache_key, self.formats, verify=True) is not None)
            if cached:
                outcome = self.run(item_id)
                if outcome not in ("retry", "wait"):
                    continue
                with self.database.transaction() as session:  # not the queue's retry: hand it over below
                    session.execute(update(OrderItem).where(OrderItem.id == item_id, OrderItem.state == "queued")
                                    .values(enqueued_at=None).execution_options(synchronize_session=False))
            pending.append(item_id)
        self.hand_over(pending, enqueue)

    def hand_over(self, item_ids: Iterable[int], enqueue: Enqueue) -> list[int]:
        """Enqueue queued items not yet handed to the queue; each is handed over once, even by racing callers."""
        handed = []
        for item_id in item_ids:
            with self.database.transaction() as session:
                result = session.execute(
                    update(OrderItem)
                    .where(OrderItem.id == item_id, OrderItem.state == "queued", OrderItem.enqueued_at.is_(None))
                    .values(enqueued_at=utcnow())
                    .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                continue
            try:
                enqueue(item_id)
            except Exception:
                log.exception("could not enqueue item %s; the next reap tries again", item_id)
                with self.database.transaction() as session:
                    session.execute(update(OrderItem).where(OrderItem.id == item_id)
                                    .values(enqueued_at=None).execution_options(synchronize_session=False))
                continue
            handed.append(item_id)
        return handed

    def reap(self, enqueue: Enqueue) -> dict[str, list[int]]:
        """Queue again what a dead worker held, fail what keeps killing workers, enqueue what was never enqueued."""
        now = utcnow()
        requeued, failed = [], []
        with self.database.session() as session:
            expired = session.execute(select(OrderItem.id, OrderItem.attempts, OrderItem.lease_owner).where(
                OrderItem.state == "rendering", OrderItem.lease_expires_at < now)).all()
        for item_id, attempts, owner in expired:
            final = attempts >= self.max_attempts
            values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
            if final:
                values.update(state="failed", finished_at=now, reason=GAVE_UP_MESSAGE,
                              last_error=f"the worker rendering it stopped without finishing {attempts} times "
                                         f"(killed or crashed; last one {owner})")
            else:
                values.update(state="queued", enqueued_at=None, heartbeat_at=now, reason=None,
                              last_error=f"the worker rendering it ({owner}) stopped renewing its lease")
            with self.database.transaction() as session:
                result = session.execute(
                    update(OrderItem)
                    .where(OrderItem.id == item_id, OrderItem.state == "rendering",
                           OrderItem.lease_expires_at < now)
                    .values(**values).execution_options(synchronize_session=False))
            if result.rowcount == 1:
                (failed if final else requeued).append(item_id)
        grace = now - timedelta(seconds=float(self.config["ENQUEUE_GRACE_SECONDS"]))
        stale = now - timedelta(seconds=float(self.config["REQUEUE_AFTER_SECONDS"]))
        with self.database.session() as session:
            waiting = session.scalars(select(OrderItem.id).where(
                OrderItem.state == "queued",
                or_(and_(OrderItem.enqueued_at.is_(None),
                         func.coalesce(OrderItem.heartbeat_at, OrderItem.created_at) < grace),
                    OrderItem.enqueued_at < stale))).all()
        if waiting:
            with self.database.transaction() as session:
                session.execute(update(OrderItem).where(OrderItem.id.in_(waiting), OrderItem.enqueued_at < stale)
                                .values(enqueued_at=None).execution_options(synchronize_session=False))
        enqueued = self.hand_over([*requeued, *waiting], enqueue)
        if requeued or failed or enqueued:
            log.warning("reaped: requeued %s, failed %s, enqueued %s", requeued, failed, enqueued)
        return {"requeued": requeued, "failed": failed, "enqueued": enqueued}

    # -- figures for quotes and staff -----------------------------------------------------

    def queue_depth(self) -> int:
        """Items waiting for or being rendered."""
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(OrderItem)
                                  .where(OrderItem.state.in_(("queued", "rendering")))) or 0

    def average_render_seconds(self, last: int = 50) -> float:
        """Mean time of the last renders that built geometry (cache hits excluded), or the configured guess."""
        with self.database.session() as session:
            recent = select(OrderItem.render_seconds).where(OrderItem.render_seconds.is_not(None)) \
                .order_by(OrderItem.finished_at.desc()).limit(last).subquery()
            mean = session.scalar(select(func.avg(recent.c.render_seconds)))
        return float(mean) if mean is not None else float(self.config["DEFAULT_RENDER_SECONDS"])


class Heartbeat:
    """A thread renewing a claim's lease every ``HEARTBEAT_SECONDS`` while the block runs."""

    def __init__(self, generation: Generation, claim: Claim):
        self.generation = generation
        self.claim = claim
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{claim.item_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.generation.heartbeat_seconds):
            try:
                if not self.generation.renew(self.claim):
                    log.warning("item %s: lease lost to another worker", self.claim.item_id)
                    return
            except Exception:
                log.exception("item %s: could not renew the lease", self.claim.item_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
