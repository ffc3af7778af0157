"""Tracking: what a customer reads of their order, in the words of a workshop, not of its software.

An item's files are "being made", then "checked" (the render passed its checks; nothing is made yet);
each part is then "waiting for a machine", "being cut" or "being printed", "cut" or "printed"; a line whose
parts are all made is "ready to ship". A cancelled part says why when the workshop gave a reason. A printed part
that did not come out right (its plate stopped on the printer, an object failed) and that the workshop makes
again says so: the part being made again is "being made again", the failed one it replaces is not "held up" any
more. The states stay machine words in the API (``state``); these are the ``label`` beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ITEM_WORDS = {"queued": "files waiting to be made", "rendering": "files being made",
              "ready": "files checked", "failed": "could not be made"}
"""An item's files, for the customer: "ready" means checked, not made."""

_MAKING = {"fdm": ("printing", "being printed", "printed"), "cnc": ("cutting", "being cut", "cut")}


AGAIN = "being made again"
"""What a part that did not come out right, and that the workshop makes again, is doing."""
_FINISHED = ("done", "cancelled", "failed")


def job_words(kind: str, state: str, reason: str | None = None, *, made_again: bool = False,
              replaced: str | None = None) -> str:
    """One part's manufacturing state, for the customer. ``made_again``: the job makes again parts that did not
    come out right; ``replaced``: the (failed) job's parts are being made again by other jobs, in the state the
    slowest of them is in."""
    _, doing, done = _MAKING.get(kind, _MAKING["fdm"])
    words = {"queued": "being prepared for its machine", "slicing": "being prepared for its machine",
             "ready": "waiting for a machine", "sent": "on its machine, about to start", "printing": doing,
             "done": done, "failed": "held up; our workshop is on it"}
    if state == "cancelled":
        return f"cancelled: {reason}" if reason else "cancelled by our workshop; we will write to you about it"
    if replaced is not None:
        return f"did not come out right; {f'{done} again' if replaced == 'done' else AGAIN}"
    if made_again and state not in _FINISHED:
        return f"{AGAIN}: {words.get(state, state)}"
    return words.get(state, state)


def replacing(jobs: Sequence[Any]) -> dict[int, str]:
    """Of an item's jobs (rows with ``id``, ``state``, ``batching``), the failed ones whose every part that did not
    come out right is being made again (``web.batches`` marks them ``superseded``), each with the state of the
    jobs making it again: "done" once they all are, else "making"."""
    states = {job.id: job.state for job in jobs}
    found = {}
    for job in jobs:
        info = job.batching or {}
        if job.state == "failed" and info.get("superseded"):
            again = [states.get(int(other)) for other in set((info.get("remade") or {}).values())]
            found[job.id] = "done" if again and all(state == "done" for state in again) else "making"
    return found


def process_words(kind: str) -> str:
    """How a part is made, as a noun: "printing", "cutting"."""
    return _MAKING.get(kind, _MAKING["fdm"])[0]


def line_words(item_state: str, jobs: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """An order line's progress, (key, words): its files until its parts are planned, then its parts."""
    if item_state != "ready" or not jobs:
        return item_state, ITEM_WORDS.get(item_state, item_state)
    jobs = [job for job in jobs if not job.get("replaced")]  # their parts are counted in the jobs making them again
    states = [job["state"] for job in jobs]
    live = [s for s in states if s != "cancelled"]
    if live and all(s == "done" for s in live):
        return "shipping", "made: ready to ship"
    if any(s == "failed" for s in states):
        return "held", "held up; our workshop is on it"
    if any(job.get("made_again") and job["state"] not in _FINISHED for job in jobs):
        return "remaking", f"some parts {AGAIN}"
    if any(s == "printing" for s in states):
        kinds = {job["kind"] for job in jobs if job["state"] == "printing"}
        doing = " and ".join(sorted(_MAKING.get(k, _MAKING["fdm"])[1] for k in kinds))
        return "making", doing
    if not live:
        return "cancelled", "cancelled"
    if any(s in ("ready", "sent") for s in live) and not any(s in ("queued", "slicing") for s in live):
        return "waiting", "waiting for a machine"
    return "preparing", "files checked; being prepared for the machines"


def order_words(lines: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The whole order's progress from its lines' (key, words)."""
    keys = [key for key, _ in lines]
    if keys and all(key == "shipping" for key in keys):
        return "shipping", "made: ready to ship"
    for key in ("failed", "held", "remaking", "queued", "rendering", "making", "waiting", "preparing", "ready"):
        if key in keys:
            return key, dict(lines)[key]
    return (keys[0], lines[0][1]) if lines else ("queued", ITEM_WORDS["queued"])
