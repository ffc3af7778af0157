"""The queue: a huey instance built from configuration, and its tasks.

SQLite storage in the instance folder by default (one machine, zero setup); Redis when
``REDIS_URL`` is set (workers on several machines). Tasks are thin wrappers around
:class:`web.orders.generation.Generation`, which calls ``parametric.render``. Nothing here builds
the Flask app: ``web.tasks.huey`` (for ``huey_consumer web.tasks.huey -k process``) is
built from the environment on first use, and ``parametric worker`` runs :func:`create_consumer`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from huey.consumer import Consumer as HueyConsumer
from huey.exceptions import RetryTask

from .config import load_config
from .orders.generation import Generation


@dataclass
class Queue:
    """A huey instance with the render and reap tasks registered on it."""

    huey: Huey
    generation: Generation
    render_item: TaskWrapper
    reap_leases: TaskWrapper
    prepare_job: TaskWrapper | None = None  # manufacturing (web.jobs)
    manufacture: TaskWrapper | None = None
    gather_batches: TaskWrapper | None = None  # batches (web.batches)

    def enqueue(self, item_id: int) -> None:
        self.render_item(item_id)


def create_huey(config: Mapping[str, Any]) -> Huey:
    """The huey instance the configuration names: Redis when ``REDIS_URL`` is set, else a SQLite file."""
    name = config["HUEY_NAME"]
    if config.get("REDIS_URL"):
        return RedisHuey(name, url=config["REDIS_URL"], results=False)
    Path(config["HUEY_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=config["HUEY_FILE"], results=False, timeout=60)


def create_queue(config: Mapping[str, Any], generation: Generation | None = None) -> Queue:
    """The queue and its tasks for this configuration (the web app enqueues, workers execute)."""
    huey = create_huey(config)
    generation = generation or Generation(config)
    retry_delay = float(config["RENDER_RETRY_DELAY"])

    @huey.task(name="render_item")
    def render_item(item_id: int) -> str:
        """Generate an order item's files; a failed attempt is tried again after ``RENDER_RETRY_DELAY``."""
        outcome = generation.run(item_id)
        if outcome == "retry":
            raise RetryTask(f"item {item_id} failed; trying again", delay=retry_delay)
        return outcome

    @huey.periodic_task(crontab(), name="reap_leases")
    def reap_leases() -> dict[str, list[int]]:
        """Queue again the items whose worker died (run every ``REAP_INTERVAL_SECONDS`` by our consumer)."""
        return generation.reap(render_item)

    from .jobs import register_tasks

    prepare_job, manufacture = register_tasks(huey, generation.database, generation.output_folder,
                                              public_url=str(config["PUBLIC_URL"]), cache=generation.cache,
                                              settings=generation.settings, config=config)
    from .batches import register_tasks as register_batch_tasks

    gather_batches = register_batch_tasks(huey, generation.database, generation.output_folder, config)
    return Queue(huey, generation, render_item, reap_leases, prepare_job, manufacture, gather_batches)


class Consumer(HueyConsumer):
    """huey's consumer whose scheduler runs periodic tasks every ``reap_interval`` seconds, not every minute."""

    def __init__(self, huey: Huey, reap_interval: int = 60, **options: Any):
        self.reap_interval = max(1, int(reap_interval))
        super().__init__(huey, **options)

    def _create_scheduler(self) -> Any:
        scheduler = super()._create_scheduler()
        scheduler.periodic_task_seconds = self.reap_interval
        return scheduler


def create_consumer(queue: Queue, config: Mapping[str, Any], workers: int = 1) -> Consumer:
    """A consumer running ``workers`` worker processes (the CAD kernel is not thread-safe)."""
    return Consumer(queue.huey, reap_interval=int(config["REAP_INTERVAL_SECONDS"]), workers=workers,
                    worker_type="process", periodic=True, scheduler_interval=1,
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
