"""The errors the core raises, each carrying what a person needs to fix the request."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: its dotted name and a plain-language message."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class ParametricError(Exception):
    """Base of every error the core raises on purpose."""


class ValidationError(ParametricError):
    """The request was refused before any geometry was built; lists every bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with their field names under ``prefix`` (e.g. ``items[0].params``)."""
        return ValidationError([FieldError(f"{prefix}.{e.field}" if e.field else prefix, e.message)
                                for e in self.errors])


class GeometryError(ParametricError):
    """The geometry kernel failed, or built something unfit, for accepted input."""

    def __init__(self, template: str, params: dict[str, Any], reason: str):
        self.template = template
        self.params = params
        self.reason = reason
        super().__init__(
            f"template {template!r} could not be built with parameters "
            f"{json.dumps(params, sort_keys=True)}: {reason}"
        )


class Problems(list[FieldError]):
    """Every problem of one request, gathered from several checks so all are reported at once."""

    def check(self, function: Callable[..., T], *args: Any) -> T | None:
        """``function(*args)``; if it raises :class:`ValidationError`, keep its errors and give ``None``."""
        try:
            return function(*args)
        except ValidationError as error:
            self.extend(error.errors)
            return None
