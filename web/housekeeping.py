"""Housekeeping on a schedule of its own: the reaper and the manufacturing dispatcher.

Each is a process of the consumer (``parametric worker``), beside the worker processes, so neither
ever waits behind a backlog in the queue, and a slow printer host holding up the dispatcher does not
hold up the reaper. Both are safe to run on every worker machine at once: every change they make is
a conditional UPDATE, and the dispatcher's sends are idempotent (``web.jobs``).

The reaper (:func:`reap`): items whose lease ran out go back to the queue (``Generation.reap``);
workers whose heartbeat is older than ``WORKER_STALE_SECONDS`` (stopped, stuck or dead) are marked
lost and their task is given to another worker: the order item they held is released and queued again,
a preview or quote build is queued again, a job being sliced goes back to queued. It also forgets old
build records and the rows of workers long gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from huey.consumer import BaseProcess
from sqlalchemy import or_, update

from . import builds, workers
from .models import OrderItem, utcnow

log = logging.getLogger(__name__)


class Duty(BaseProcess):
    """A process of the consumer that runs ``work`` every ``interval_s`` seconds, with a heartbeat of its own."""

    def __init__(self, consumer: Any, queue: Any, name: str, interval_s: float,
                 work: Callable[[], Any], heartbeat_s: float):
        super().__init__(consumer.huey, consumer.stop_flag)
        self.consumer, self.queue, self.process_name = consumer, queue, name
        self.interval_s, self.work, self.heartbeat_s = max(0.2, float(interval_s)), work, heartbeat_s
        self.heartbeat: workers.Heartbeat | None = None

    def fresh(self) -> Duty:
        return Duty(self.consumer, self.queue, self.process_name, self.interval_s, self.work, self.heartbeat_s)

    def initialize(self) -> None:
        try:
            self.heartbeat = workers.Heartbeat(self.queue.generation.database, self.heartbeat_s,
                                               role=self.process_name.lower()).start()
        except Exception:
            log.exception("%s: could not record its heartbeat", self.process_name)

    def loop(self, now: Any = None) -> None:
        started = time.monotonic()
        try:
            outcome = self.work()
            if outcome:
                log.debug("%s: %s", self.process_name, outcome)
        except Exception:
            log.exception("%s failed; it runs again in %ss", self.process_name, self.interval_s)
        self.stop_flag.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def shutdown(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()


def duties(consumer: Any, queue: Any, config: Mapping[str, Any]) -> list[Duty]:
    """The reaper and the dispatcher for ``consumer``; with ``BATCHING`` on, the batcher too (gathering ready jobs
    into batches, laying them out, closing them by the shop's policy and following the batches sent:
    ``web.batches``), every ``BATCH_INTERVAL_SECONDS`` (default the dispatcher's interval), in a process of its
    own so that a long nesting holds up neither the reaper nor the dispatcher."""
    from .jobs import manufacture_once

    reap_s = float(config["REAP_INTERVAL_SECONDS"])
    dispatch_s = float(config.get("DISPATCH_INTERVAL_SECONDS") or reap_s)
    heartbeat_s = float(config["WORKER_HEARTBEAT_SECONDS"])
    generation = queue.generation
    found = [
        Duty(consumer, queue, "Reaper", reap_s, lambda: reap(queue, config), heartbeat_s),
        Duty(consumer, queue, "Dispatcher", dispatch_s,
             lambda: manufacture_once(generation.database, generation.output_folder, queue.prepare_job,
                                      batching=bool(config.get("BATCHING"))), heartbeat_s),
    ]
    if config.get("BATCHING"):  # huey's periodic gather_batches never runs under our consumer (periodic=False)
        from .batches import follow, gather

        def batch() -> dict[str, Any]:
            return {"batches": gather(generation.database, generation.output_folder, config),
                    "followed": follow(generation.database)}

        batch_s = float(config.get("BATCH_INTERVAL_SECONDS") or dispatch_s)
        found.append(Duty(consumer, queue, "Batcher", batch_s, batch, heartbeat_s))
    return found


def reap(queue: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """One round of the reaper (see the module's description)."""
    database = queue.generation.database
    handed = reap_workers(queue, float(config["WORKER_STALE_SECONDS"]))
    outcome: dict[str, Any] = {**queue.generation.reap(queue.enqueue), "workers": handed}
    builds.prune(database, float(config["BUILD_RECORD_DAYS"]))
    queue.generation.tidy()  # the render cache: leftovers of interrupted builds, and its size limit
    workers.forget(database, float(config["WORKER_RECORD_SECONDS"]))
    return outcome


def reap_workers(queue: Any, stale_s: float) -> dict[str, str]:
    """Give the task of every worker whose heartbeat is stale to another worker; what was done, by worker.

    A worker is marked lost first (once, by one reaper, whichever machine it runs on), then its task is
    handed on, so two reapers never hand the same task on twice."""
    database = queue.generation.database
    done: dict[str, str] = {}
    for row in workers.stale(database, stale_s):
        age = (utcnow() - row.heartbeat_at).total_seconds()
        what = f"no heartbeat for {age:.0f} s (stopped, stuck or dead)"
        if not workers.mark_lost(database, row.name, what):
            continue
        released = _release_items(queue, row, what)
        handed = ""
        if released:
            handed = f"; item {', '.join(map(str, released))} given to another worker"
        elif row.task in ("build_preview", "build_quote", "draw_picture", "build_plates") and row.task_args:
            builds.release(database, str(row.task_args[0]), f"the worker building it ({row.name}) stopped answering")
            queue.resubmit(row.task, list(row.task_args), row.task_priority)
            handed = f"; its {row.task.removeprefix('build_').replace('_', ' ')} given to another worker"
        elif row.task == "prepare_job" and row.task_args:
            from .jobs import transition

            job_id = int(row.task_args[0])
            if transition(database, job_id, "queued", expect=("slicing",),
                          last_error=f"the worker preparing it ({row.name}) stopped answering"):
                queue.resubmit(row.task, [job_id], row.task_priority)
                handed = f"; job {job_id} given to another worker"
        elif row.task not in (None, "render_item"):
            queue.resubmit(row.task, list(row.task_args or []), row.task_priority)
            handed = f"; its task {row.task} queued again"
        note = f"{what} at {utcnow():%Y-%m-%d %H:%M:%S} UTC{handed}"
        workers.mark_lost(database, row.name, note, again=True)
        log.warning("worker %s: %s", row.name, note)
        done[row.name] = note
    return done


def _release_items(queue: Any, row: Any, what: str) -> list[int]:
    """Queue again the items a worker holds a lease on (or took from the queue and never claimed), and hand
    them to the queue."""
    database = queue.generation.database
    worker = row.name
    with database.transaction() as session:
        ids = list(session.scalars(
            update(OrderItem)
            .where(OrderItem.state == "rendering", or_(OrderItem.lease_owner.startswith(f"{worker}:", autoescape=True),
                                                       OrderItem.lease_owner == worker))
            .values(state="queued", lease_owner=None, lease_expires_at=None, enqueued_at=None,
                    heartbeat_at=utcnow(), reason=f"the worker rendering it ({worker}) stopped answering: {what}")
            .returning(OrderItem.id).execution_options(synchronize_session=False)).all())
    if row.task == "render_item" and row.task_args:
        item_id = int(row.task_args[0])
        with database.transaction() as session:  # taken from the queue but not claimed yet: hand it over again
            result = session.execute(update(OrderItem).where(OrderItem.id == item_id, OrderItem.state == "queued",
                                                             OrderItem.enqueued_at.is_not(None))
                                     .values(enqueued_at=None).execution_options(synchronize_session=False))
        if result.rowcount == 1 and item_id not in ids:
            ids.append(item_id)
    queue.generation.hand_over(ids, queue.enqueue)
    return ids
