"""Units at the edge: customer-facing lengths and angles become millimetres and degrees.

A length is a plain number (millimetres) or a string with a unit: ``"32in"``, ``"80cm"``,
``"12.5 mm"``, ``'3/4"'``. Inside the library every length is a float in millimetres.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MM_PER_UNIT: dict[str, float] = {
    "mm": 1.0,
    "cm": 10.0,
    "m": 1000.0,
    "in": 25.4,
    "inch": 25.4,
    "inches": 25.4,
    '"': 25.4,
    "ft": 304.8,
    "feet": 304.8,
    "foot": 304.8,
}
DEGREES_PER_UNIT: dict[str, float] = {
    "deg": 1.0,
    "degree": 1.0,
    "degrees": 1.0,
    "°": 1.0,
    "rad": 180.0 / math.pi,
}

_QUANTITY = re.compile(
    r"""^\s*(?P<number>[+-]?(?:\d+\s+\d+/\d+|\d+/\d+|\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
        \s*(?P<unit>[A-Za-z"°]*)\s*$""",
    re.VERBOSE,
)


class UnitError(ValueError):
    """A value that is not a number with a known unit."""


def _parse_number(text: str) -> float:
    text = text.strip()
    if " " in text:  # a mixed fraction such as "1 1/2"
        whole, fraction = text.split()
        sign = -1 if whole.startswith("-") else 1
        return float(int(whole) + sign * Fraction(fraction))
    if "/" in text:
        return float(Fraction(text))
    return float(text)


def _convert(value: object, table: dict[str, float], default_unit: str, kind: str) -> float:
    if isinstance(value, bool):
        raise UnitError(f"expected a {kind}, got a true/false value")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise UnitError(
                f"{value!r} is not a {kind}; write a number with an optional unit "
                f"({', '.join(sorted(set(table) - {'inches', 'feet', 'foot', 'degree', 'degrees'}))})"
            )
        unit = match.group("unit").lower() or default_unit
        if unit not in table:
            raise UnitError(
                f"unknown unit {match.group('unit')!r} in {value!r}; allowed units for a {kind}: "
                f"{', '.join(sorted(set(table) - {'inches', 'feet', 'foot', 'degree', 'degrees'}))}"
            )
        number = _parse_number(match.group("number")) * table[unit]
    else:
        raise UnitError(f"expected a {kind} (number or string with unit), got {type(value).__name__}")
    if not math.isfinite(number):
        raise UnitError(f"{value!r} is not a finite {kind}")
    return number


def to_mm(value: object) -> float:
    """A length in millimetres from a number (mm) or a string with a unit."""
    return _convert(value, MM_PER_UNIT, "mm", "length")


def to_degrees(value: object) -> float:
    """An angle in degrees from a number (degrees) or a string with a unit (deg, rad)."""
    return _convert(value, DEGREES_PER_UNIT, "deg", "angle")


def format_mm(value: float, unit: str = "mm") -> str:
    """A millimetre value written in the given display unit, for people."""
    factor = MM_PER_UNIT[unit]
    return f"{value / factor:.4g} {unit}"


def format_number(value: float, digits: int | None = None) -> str:
    """A number as people read it: at most ``digits`` decimals, trailing zeros dropped (``6``, ``2.5``), never
    ``-0`` nor exponent form; with ``digits=None`` exact, the shortest text that reads back the same.

    The one number formatter of messages, job sheets, G-code comments, specs and forms.
    """
    number = float(value)
    if digits is None:
        if number.is_integer():
            return str(int(number))
        text = repr(number)
        if "e" not in text:
            return text
        text = f"{number:.20f}"
    else:
        text = f"{number:.{max(0, digits)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_duration(seconds: float, *, precise: bool = True) -> str:
    """How long, for people: ``"1 h 02 min"``, ``"12 min 30 s"`` (``"12 min"`` unless ``precise``), ``"40 s"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if precise else f"{minutes} min"
    return f"{secs} s"
