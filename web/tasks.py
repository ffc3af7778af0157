"""The queue: a huey instance built from configuration, its tasks and their priorities.

SQLite storage in the instance folder by default (one machine, zero setup); Redis when
``REDIS_URL`` is set (workers on several machines), with huey's priority storage for Redis
(``PriorityRedisHuey``: a sorted set, Redis 5 or newer). Both storages hand out the waiting task of
the highest priority first (FIFO within one priority), so a customer's preview never waits behind
a backlog of slicing (:data:`PRIORITY`). Housekeeping (the lease reaper, the manufacturing
dispatcher) is not queued at all when our consumer runs: it has processes of its own
(``web.housekeeping``). It stays registered as periodic tasks, at the top priority, for huey's
plain ``huey_consumer web.tasks.huey -k process``.

Tasks are thin wrappers around :class:`web.orders.generation.Generation` (order items), the
builds of pages (``web.shop.preview``, ``web.orders.quotes``, ``web.shop.catalog``, ``web.orders.plates``)
and ``web.jobs``. Each worker process records a heartbeat with the task it is running
(``web.workers``). Nothing here builds the Flask app: ``web.tasks.huey`` is built from the
environment on first use, and ``parametric worker`` runs :func:`create_consumer`.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huey import Huey, PriorityRedisHuey, SqliteHuey, crontab
from huey import signals as huey_signals
from huey.api import TaskWrapper
from huey.consumer import Consumer as HueyConsumer
from huey.exceptions import RetryTask

from . import builds, workers
from .config import load_config
from .orders.generation import Generation
from .priorities import KIND_OF_PRIORITY, PRIORITY

log = logging.getLogger(__name__)

FINISHED_SIGNALS = (huey_signals.SIGNAL_COMPLETE, huey_signals.SIGNAL_ERROR, huey_signals.SIGNAL_RETRYING,
                    huey_signals.SIGNAL_CANCELED, huey_signals.SIGNAL_REVOKED, huey_signals.SIGNAL_EXPIRED,
                    huey_signals.SIGNAL_LOCKED, huey_signals.SIGNAL_INTERRUPTED, huey_signals.SIGNAL_TIMEOUT,
                    huey_signals.SIGNAL_RATE_LIMITED)


@dataclass
class Queue:
    """A huey instance with the tasks registered on it."""

    huey: Huey
    generation: Generation
    render_item: TaskWrapper
    reap_leases: TaskWrapper
    prepare_job: TaskWrapper | None = None  # manufacturing (web.jobs)
    manufacture: TaskWrapper | None = None
    build_preview: TaskWrapper | None = None
    build_quote: TaskWrapper | None = None
    draw_picture: TaskWrapper | None = None
    build_plates: TaskWrapper | None = None
    tasks: dict[str, TaskWrapper] = field(default_factory=dict)
    gather_batches: TaskWrapper | None = None  # batches (web.batches)

    def enqueue(self, item_id: int) -> None:
        self.render_item(item_id)

    def resubmit(self, name: str, args: list[Any], priority: int | None) -> bool:
        """Put a task (of a worker that stopped answering) in the queue again; ``False`` for an unknown task."""
        task = self.tasks.get(name)
        if task is None:
            return False
        task(*args, priority=priority)
        return True

    def waiting(self) -> dict[int, int]:
        """Tasks waiting in the queue, by priority (reads the storage directly: one query)."""
        storage = self.huey.storage
        if isinstance(self.huey, PriorityRedisHuey):
            return {p: int(storage.conn.zcount(storage.queue_key, -p, -p)) for p in sorted(set(PRIORITY.values()))}
        rows = storage.sql("select priority, count(id) from task where queue=? group by priority",
                           (storage.name,), results=True)
        return {int(priority): int(count) for priority, count in rows}

    def ahead_of(self, priority: int) -> dict[str, int]:
        """Tasks waiting at ``priority`` or above, by kind (``preview``, ``quote``, ``render``...)."""
        ahead: dict[str, int] = {}
        for level, count in self.waiting().items():
            if level >= priority and count:
                kind = KIND_OF_PRIORITY.get(level, str(level))
                ahead[kind] = ahead.get(kind, 0) + count
        return ahead


def create_huey(config: Mapping[str, Any]) -> Huey:
    """The huey instance the configuration names: Redis when ``REDIS_URL`` is set, else a SQLite file."""
    name = config["HUEY_NAME"]
    if config.get("REDIS_URL"):
        return PriorityRedisHuey(name, url=config["REDIS_URL"], results=False)
    Path(config["HUEY_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=config["HUEY_FILE"], results=False, timeout=60)


def _lower_priority(increment: int) -> None:
    """Give this worker process's CPU to the web process first (``WORKER_NICE``, as ``nice`` does): on a machine that
    serves pages and builds, a burst of builds must not slow the pages (the issue's 200 ms while 50 previews are
    built). The builds get every cycle the pages leave. Its heartbeat is beaten by its consumer too, so a worker
    starved for a moment does not look hung."""
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:  # not allowed here: run at the same priority
            log.warning("could not lower the worker's CPU priority by %s", increment)


class _ThisWorker:
    """The heartbeat of the worker process this module runs in (set by the start-up hook)."""

    heartbeat: workers.Heartbeat | None = None


def run_build(queue_config: Mapping[str, Any], database: Any, key: str,
              work: Callable[[dict[str, Any]], dict[str, Any] | None]) -> str:
    """Claim the build ``key``, run ``work(request)`` and record its outcome: ``done``, ``failed`` (the
    configuration cannot be built: the kernel's or validator's reason is shown to the customer) or
    ``skipped`` (done already, or another worker has it). Any other error is a fault of ours: the build
    goes back to the queue and is tried again (``RENDER_ATTEMPTS`` times), then forgotten, so that the
    next request asks again."""
    import parametric

    worker = workers.worker_name()
    claimed = builds.claim(database, key, worker)
    if claimed is None:
        return "skipped"
    started = time.perf_counter()
    try:
        result = work(dict(claimed.request))
    except parametric.GeometryError as error:
        builds.fail(database, key, worker, f"this configuration cannot be built: {error.reason}")
        return "failed"
    except parametric.ValidationError as error:
        builds.fail(database, key, worker, str(error))
        return "failed"
    except Exception:
        log.exception("build %s (%s) failed", key[:12], claimed.kind)
        if claimed.attempts >= int(queue_config["RENDER_ATTEMPTS"]):
            builds.forget(database, key)
            return "failed"
        builds.release(database, key, "a fault on our side; trying again")
        raise RetryTask(f"build {key[:12]} failed; trying again",
                        delay=float(queue_config["RENDER_RETRY_DELAY"])) from None
    builds.finish(database, key, worker, result, time.perf_counter() - started)
    return "done"


def create_queue(config: Mapping[str, Any], generation: Generation | None = None) -> Queue:
    """The queue and its tasks for this configuration (the web app enqueues, workers execute)."""
    huey = create_huey(config)
    generation = generation or Generation(config)
    database = generation.database
    retry_delay = float(config["RENDER_RETRY_DELAY"])
    fault_delay = float(config["FAULT_RETRY_SECONDS"])

    @huey.task(name="render_item", priority=PRIORITY["render"])
    def render_item(item_id: int) -> str:
        """Generate an order item's files; a failed attempt is tried again after ``RENDER_RETRY_DELAY``."""
        outcome = generation.run(item_id)
        if outcome in ("retry", "wait"):  # wait: a fault of ours (a full disk), retried until it clears
            raise RetryTask(f"item {item_id} failed; trying again", delay=fault_delay if outcome == "wait"
                            else retry_delay)
        return outcome

    @huey.task(name="build_preview", priority=PRIORITY["preview"])
    def build_preview(key: str) -> str:
        """A configuration's preview files (GLB and STL) into the render cache."""
        from .shop.preview import build

        return run_build(config, database, key, lambda request: build(request, generation))

    @huey.task(name="build_quote", priority=PRIORITY["quote"])
    def build_quote(key: str) -> str:
        """What a quote is priced from: the configuration's parts measured and sliced for the shop's printers."""
        from .orders.quotes import measure_parts

        return run_build(config, database, key, lambda request: measure_parts(request, generation, config))

    @huey.task(name="draw_picture", priority=PRIORITY["catalog"])
    def draw_picture(key: str) -> str:
        """A catalog picture of a template's standard configuration."""
        from .shop.catalog import draw

        return run_build(config, database, key, lambda request: draw(request, generation, config))

    @huey.task(name="build_plates", priority=PRIORITY["plates"])
    def build_plates(key: str) -> str:
        """Print-ready plates of an order item for the customer's own printer (PrusaSlicer, about a second a plate)."""
        from .orders.plates import make_plates

        return run_build(config, database, key,
                         lambda request: make_plates(request, database, generation.output_folder))

    @huey.periodic_task(crontab(), name="reap_leases", priority=PRIORITY["housekeeping"])
    def reap_leases() -> dict[str, Any]:
        """Queue again what dead or hung workers held (only under huey's plain consumer: ours has a reaper
        process of its own)."""
        from .housekeeping import reap

        return reap(queue, config)

    @huey.on_startup("heartbeat")
    def start_heartbeat() -> None:
        _lower_priority(int(config["WORKER_NICE"]))
        _ThisWorker.heartbeat = workers.Heartbeat(database, float(config["WORKER_HEARTBEAT_SECONDS"])).start()

    @huey.on_shutdown("heartbeat")
    def stop_heartbeat() -> None:
        if _ThisWorker.heartbeat is not None:
            _ThisWorker.heartbeat.stop()

    @huey.signal(huey_signals.SIGNAL_EXECUTING)
    def task_started(signal_name: str, task: Any, *args: Any) -> None:
        if _ThisWorker.heartbeat is not None:
            _safely(_ThisWorker.heartbeat.running, task.name, list(task.args or ()), task.id, task.priority)

    @huey.signal(*FINISHED_SIGNALS)
    def task_finished(signal_name: str, task: Any, *args: Any) -> None:
        if _ThisWorker.heartbeat is not None:
            _safely(_ThisWorker.heartbeat.finished)

    from .jobs import register_tasks

    prepare_job, manufacture = register_tasks(huey, database, generation.output_folder,
                                              public_url=str(config["PUBLIC_URL"]), cache=generation.cache,
                                              settings=generation.settings, config=config,
                                              priority=PRIORITY["manufacturing"],
                                              periodic_priority=PRIORITY["housekeeping"])
    from .batches import register_tasks as register_batch_tasks

    gather_batches = register_batch_tasks(huey, generation.database, generation.output_folder, config,
                                          priority=PRIORITY["housekeeping"])
    queue = Queue(huey, generation, render_item, reap_leases, prepare_job, manufacture, build_preview,
                  build_quote, draw_picture, build_plates=build_plates, gather_batches=gather_batches)
    queue.tasks = {task.name: task for task in (render_item, build_preview, build_quote, draw_picture, build_plates,
                                                prepare_job)}
    return queue


def _safely(call: Callable[..., Any], *args: Any) -> None:
    try:
        call(*args)
    except Exception:  # a heartbeat write must never fail the task
        log.exception("could not record the worker's task")


class Consumer(HueyConsumer):
    """huey's consumer with housekeeping processes of its own (``web.housekeeping``: the reaper every
    ``REAP_INTERVAL_SECONDS``, the manufacturing dispatcher every ``DISPATCH_INTERVAL_SECONDS``), so that
    neither waits behind a backlog in the queue, and with a check that kills a worker process whose
    heartbeat went stale (stopped or stuck), which huey's health check then replaces."""

    def __init__(self, huey: Huey, queue: Queue | None = None, config: Mapping[str, Any] | None = None,
                 **options: Any):
        self.queue = queue
        self.config = config
        super().__init__(huey, **options)
        self.housekeepers: list[tuple[Any, Any]] = []
        if queue is not None and config is not None:
            from .housekeeping import duties

            for duty in duties(self, queue, config):
                self.housekeepers.append((duty, self._create_process(duty, duty.process_name)))

    def start(self) -> None:
        super().start()
        for _, process in self.housekeepers:
            process.start()
        if self.queue is not None and self.config is not None:  # after forking: the children never share it
            threading.Thread(target=self._beat_for_children, name="heartbeats", daemon=True).start()

    def _beat_for_children(self) -> None:
        """Beat for every running child (its own beat thread may be held up by a long kernel call), until stopped;
        with a database engine of its own, which the forked children never touch."""
        from .db import Database

        assert self.config is not None
        database = Database(self.config["DATABASE_URL"])
        interval = max(0.2, float(self.config["WORKER_HEARTBEAT_SECONDS"]))
        while not self.stop_flag.wait(interval):
            pids = [p.pid for _, p in [*self.worker_threads, *self.housekeepers] if getattr(p, "pid", None)]
            try:
                workers.beat_for(database, pids)
            except Exception:
                self._logger.exception("could not write the workers' heartbeats")

    def _join_workers(self) -> bool:
        finished = super()._join_workers()
        for _, process in self.housekeepers:
            process.join(5)
        return finished and not any(self.environment.is_alive(p) for _, p in self.housekeepers)

    def _interrupt_workers(self) -> None:
        super()._interrupt_workers()
        self.environment.interrupt_workers([p for _, p in self.housekeepers])

    def check_worker_health(self) -> bool:
        self._kill_stale_workers()
        healthy = super().check_worker_health()
        for index, (duty, process) in enumerate(self.housekeepers):
            if not self.environment.is_alive(process):
                self._logger.warning("%s died, restarting.", duty.process_name)
                fresh = duty.fresh()
                self.housekeepers[index] = (fresh, self._create_process(fresh, fresh.process_name))
                self.housekeepers[index][1].start()
        return healthy

    def _kill_stale_workers(self) -> None:
        """SIGKILL a worker process of ours that is stopped (SIGSTOP, or a zombie) and whose heartbeat is older than
        ``WORKER_STALE_SECONDS``, also when the reaper has already marked it lost and handed on its item. A running
        child is beaten for by :meth:`_beat_for_children`: its heartbeat is old only when the database was out of
        reach for a while, and killing it would lose its work for nothing."""
        if self.queue is None or self.config is None:
            return
        stale_s = float(self.config["WORKER_STALE_SECONDS"])
        pids = {process.pid: process for _, process in [*self.worker_threads, *self.housekeepers]
                if getattr(process, "pid", None) and self.environment.is_alive(process)}
        try:
            found = workers.silent(self.queue.generation.database, [workers.worker_name(pid) for pid in pids], stale_s)
        except Exception:
            self._logger.exception("could not read the workers' heartbeats")
            return
        for row in found:
            if workers.process_running(row.pid):
                continue
            self._logger.warning("worker %s has not beaten for more than %ss (stopped or stuck): killing it, "
                                 "a fresh process takes its place", row.name, stale_s)
            try:
                os.kill(row.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pids[row.pid].join(5)


def create_consumer(queue: Queue, config: Mapping[str, Any], workers: int = 1) -> Consumer:
    """A consumer running ``workers`` worker processes (the CAD kernel is not thread-safe) and the
    housekeeping processes."""
    return Consumer(queue.huey, queue=queue, config=config, workers=workers, worker_type="process",
                    periodic=False, scheduler_interval=1,
                    initial_delay=float(config["WORKER_POLL_SECONDS"]),
                    max_delay=float(config["WORKER_POLL_MAX_SECONDS"]), backoff=1.5,
                    check_worker_health=True, health_check_interval=float(config["WORKER_HEALTH_SECONDS"]))


@functools.cache
def _default_queue(pid: int) -> Queue:
    return create_queue(load_config())


def __getattr__(name: str) -> Any:
    if name == "huey":
        return _default_queue(os.getpid()).huey
    raise AttributeError(name)

