"""Workers and their heartbeats: one row per worker process, written every ``WORKER_HEARTBEAT_SECONDS``.

A worker process records itself when it starts, with the task it is running (name, arguments, id,
priority, since when), and beats from a thread of its own; the consumer that started it also beats
for it while the process is running (``/proc``: not stopped, not gone), because a long call into the
CAD kernel can hold the worker's interpreter for seconds. A process that is stopped (SIGSTOP) or
dead stops beating: once its heartbeat is older than ``WORKER_STALE_SECONDS`` the
reaper (``web.housekeeping``) gives its task to another worker and notes it on the row, and the
consumer that started it kills it so a fresh process takes its place. Staff see every worker, its
last heartbeat and what it holds (``/api/v1/staff/queue``, the staff queue page).

This module knows the database only; it never imports the queue or Flask.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from .db import Database
from .models import WorkerRow, utcnow

log = logging.getLogger(__name__)


def worker_name(pid: int | None = None) -> str:
    """This process's name in the workers table and in item leases: ``host:pid``."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


class Heartbeat:
    """This process's row in the workers table, beaten by a daemon thread until :meth:`stop`."""

    def __init__(self, database: Database, interval_s: float, role: str = "worker"):
        self.database = database
        self.interval_s = max(0.2, float(interval_s))
        self.role = role
        self.name = worker_name()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        now = utcnow()
        with self.database.transaction() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.name == self.name))  # a pid used again
            session.add(WorkerRow(name=self.name, host=socket.gethostname(), pid=os.getpid(), role=self.role,
                                  state="idle", tasks_done=0, started_at=now, heartbeat_at=now))
        self._thread = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _write(self, **values: Any) -> None:
        with self._lock, self.database.transaction() as session:
            session.execute(update(WorkerRow).where(WorkerRow.name == self.name)
                            .values(heartbeat_at=utcnow(), **values).execution_options(synchronize_session=False))

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._write()
            except Exception:  # the database is away for a moment: the next beat tries again
                log.exception("worker %s: could not write its heartbeat", self.name)

    def running(self, task: str, args: list[Any], task_id: str, priority: int | None) -> None:
        """The worker took a task from the queue."""
        self._write(state="busy", task=task, task_args=args, task_id=task_id, task_priority=priority,
                    task_started_at=utcnow())

    def finished(self) -> None:
        """The worker is done with its task (whatever the outcome)."""
        self._write(state="idle", task=None, task_args=None, task_id=None, task_priority=None,
                    task_started_at=None, tasks_done=WorkerRow.tasks_done + 1)

    def stop(self) -> None:
        """Stop beating and mark the row stopped (a clean exit, not a loss)."""
        self._stop.set()
        try:
            self._write(state="stopped", task=None, task_args=None, task_id=None, task_priority=None)
        except Exception:
            log.exception("worker %s: could not record its stop", self.name)


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not stopped (SIGSTOP, a debugger) or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc here: at least it exists
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return state not in ("T", "t", "Z", "X")


def beat_for(database: Database, pids: list[int]) -> int:
    """Beat for the worker processes ``pids`` of this machine that are running (the consumer does this for its
    children, so a long kernel call holding a child's interpreter does not look like a hang, while a stopped
    or dead child stops beating); how many rows were beaten."""
    host = socket.gethostname()
    names = [f"{host}:{pid}" for pid in pids if process_running(pid)]
    if not names:
        return 0
    with database.transaction() as session:
        result = session.execute(update(WorkerRow).where(WorkerRow.name.in_(names),
                                                         WorkerRow.state.in_(("idle", "busy")))
                                 .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))
        return result.rowcount


def stale(database: Database, stale_s: float, now: datetime | None = None) -> list[WorkerRow]:
    """Workers that have not beaten for ``stale_s`` seconds and did not stop cleanly."""
    cutoff = (now or utcnow()) - timedelta(seconds=stale_s)
    with database.session() as session:
        return list(session.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at < cutoff,
                                                            WorkerRow.state.in_(("idle", "busy")))))


def silent(database: Database, names: list[str], stale_s: float, now: datetime | None = None) -> list[WorkerRow]:
    """Which of the workers ``names`` have not beaten for ``stale_s`` seconds, whether or not the reaper has marked
    them ``lost`` already (it hands on their items; the consumer that started them must still kill them, or a
    stopped process would hold its place for good and never be replaced)."""
    if not names:
        return []
    cutoff = (now or utcnow()) - timedelta(seconds=stale_s)
    with database.session() as session:
        return list(session.scalars(select(WorkerRow).where(WorkerRow.name.in_(names),
                                                            WorkerRow.heartbeat_at < cutoff,
                                                            WorkerRow.state.in_(("idle", "busy", "lost")))))


def mark_lost(database: Database, name: str, note: str, again: bool = False) -> bool:
    """Record that a stale worker was given up on (``lost``), once: ``False`` if someone else did it first.
    ``again``: only replace the note of a worker already lost (what was done about it)."""
    states = ("lost",) if again else ("idle", "busy")
    with database.transaction() as session:
        result = session.execute(update(WorkerRow).where(WorkerRow.name == name, WorkerRow.state.in_(states))
                                 .values(state="lost", note=note).execution_options(synchronize_session=False))
        return result.rowcount == 1


def live_count(database: Database, stale_s: float, role: str = "worker") -> int:
    """Workers of ``role`` beating now."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    with database.session() as session:
        return len(session.scalars(select(WorkerRow.name).where(WorkerRow.role == role,
                                                                WorkerRow.heartbeat_at >= cutoff,
                                                                WorkerRow.state.in_(("idle", "busy")))).all())


def forget(database: Database, older_than_s: float) -> int:
    """Remove rows of workers gone (stopped or lost) for longer than ``older_than_s``."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with database.transaction() as session:
        result = session.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < cutoff,
                                                         WorkerRow.state.in_(("stopped", "lost"))))
        return result.rowcount


def describe(database: Database, stale_s: float) -> list[dict[str, Any]]:
    """Every worker for staff: name, role, state (``stale`` when its heartbeat is old), last heartbeat and task."""
    now = utcnow()
    with database.session() as session:
        rows = session.scalars(select(WorkerRow).order_by(WorkerRow.role, WorkerRow.host, WorkerRow.pid)).all()
    described = []
    for row in rows:
        age = (now - row.heartbeat_at).total_seconds()
        state = "stale" if row.state in ("idle", "busy") and age > stale_s else row.state
        described.append({
            "name": row.name, "role": row.role, "state": state, "task": row.task, "task_args": row.task_args,
            "task_started_at": _time(row.task_started_at), "heartbeat_at": _time(row.heartbeat_at),
            "heartbeat_age_s": round(age, 1), "tasks_done": row.tasks_done, "started_at": _time(row.started_at),
            "note": row.note})
    return described


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value is not None else None
