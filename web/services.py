"""What the views share: the app's configuration, database, background generation and queue, kept in
``app.extensions["parametric"]`` by :func:`web.create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import Database
    from .orders.generation import Generation
    from .tasks import Queue


@dataclass
class Services:
    """What the views use: configuration, database, background generation and the queue."""

    config: dict[str, Any]
    database: Database
    generation: Generation
    queue: Queue


def services() -> Services:
    """The current app's services (inside a request or an app context)."""
    from flask import current_app

    return current_app.extensions["parametric"]
