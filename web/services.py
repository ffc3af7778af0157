"""What the views share: the app's configuration, database, background generation and queue, kept in
``app.extensions["parametric"]`` by :func:`web.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import Database
    from .limits import ClientLimit
    from .orders.generation import Generation
    from .tasks import Queue


@dataclass
class Services:
    """What the views use: configuration, database, background generation, the queue and the per-client
    limit on new builds."""

    config: dict[str, Any]
    database: Database
    generation: Generation
    queue: Queue
    build_limit: ClientLimit = field(default=None)  # type: ignore[assignment]  # set by create_app


def services() -> Services:
    """The current app's services (inside a request or an app context)."""
    from flask import current_app

    return current_app.extensions["parametric"]
