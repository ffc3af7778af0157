"""Units at the edge: customer-facing lengths and angles become millimetres and degrees.

A length is a plain number (millimetres) or a string with a unit: ``"32in"``, ``"80cm"``,
``"12.5 mm"``, ``'3/4"'``, feet and inches ``"6ft"``, ``"5 ft 10 in"``, ``5'10"``. Inside the library every
length is a float in millimetres; :func:`format_length` and :func:`length_range` write one for people in the
unit system they chose (:data:`LENGTH_UNITS`).
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


_FEET_AND_INCHES = re.compile(
    r"""^\s*(?P<feet>\d+(?:\.\d*)?)\s*(?:ft|feet|foot|')\s*
        (?:(?P<inches>\d+\s+\d+/\d+|\d+/\d+|\d+(?:\.\d*)?|\.\d+)\s*(?:in|inch|inches|"|'')?)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
UNIT_NAMES = "mm, cm, m, in or ft"
"""The length units a person may write, in words."""

LENGTH_UNITS: dict[str, str] = {"mm": "millimetres", "cm": "centimetres", "in": "inches", "ft": "feet and inches"}
"""The unit systems a customer may choose to read and write lengths in."""
LENGTH_DECIMALS = {"mm": 1, "cm": 1, "in": 2, "ft": 2}
"""Decimals a length is written with, per unit system (``ft``: the inches after the feet)."""
LIMIT_DECIMALS = {"mm": 1, "cm": 1, "in": 1, "ft": 1}
"""Decimals a limit is written with: rounded inward, so that every value shown as allowed is allowed."""


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
    example = "such as 80cm, 31.5in or 6ft 2in" if kind == "length" else "such as 15deg"
    units = UNIT_NAMES if kind == "length" else "deg or rad"
    if isinstance(value, bool):
        raise UnitError(f"yes or no is not a {kind}; write a number, or a number with a unit {example}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        if not value.strip():
            raise UnitError(f"nothing was entered; write the {kind} as a number, or a number with a unit {example}")
        match = _QUANTITY.match(value)
        compound = _FEET_AND_INCHES.match(value) if kind == "length" and not match else None
        if compound:
            inches = _parse_number(compound.group("inches")) if compound.group("inches") else 0.0
            number = float(compound.group("feet")) * table["ft"] + inches * table["in"]
        elif not match:
            raise UnitError(f"“{value.strip()}” is not a {kind}; write a number, or a number with a unit {example}")
        else:
            unit = match.group("unit").lower() or default_unit
            if unit not in table:
                raise UnitError(f"“{match.group('unit')}” in “{value.strip()}” is not a unit we know; write the "
                                f"{kind} in {units}")
            number = _parse_number(match.group("number")) * table[unit]
    else:
        raise UnitError(f"this is not a {kind}; write a number, or text with a unit {example}")
    if not math.isfinite(number):
        raise UnitError(f"“{value}” is not a {kind} we can make; write a number, or a number with a unit {example}")
    return number


def to_mm(value: object) -> float:
    """A length in millimetres from a number (mm) or a string with a unit."""
    return _convert(value, MM_PER_UNIT, "mm", "length")


IMPERIAL_UNITS = frozenset({"in", "inch", "inches", '"', "ft", "feet", "foot"})


def written_in_imperial(value: object) -> bool:
    """Whether a length was written in inches or feet (``"32in"``, ``'3/4"'``, ``"5 ft 10 in"``): such a value
    is kept exact where millimetre values are snapped to a field's step, since a whole number of inches seldom
    lands on a millimetre step. A plain number is millimetres."""
    if not isinstance(value, str):
        return False
    if _FEET_AND_INCHES.match(value) and not _QUANTITY.match(value):
        return True
    match = _QUANTITY.match(value)
    return bool(match) and match.group("unit").lower() in IMPERIAL_UNITS


def to_degrees(value: object) -> float:
    """An angle in degrees from a number (degrees) or a string with a unit (deg, rad)."""
    return _convert(value, DEGREES_PER_UNIT, "deg", "angle")


def format_mm(value: float, unit: str = "mm") -> str:
    """A millimetre value written in the given display unit, for people (never in exponent form)."""
    return format_length(value, unit)


def length_units(units: str | None) -> str:
    """The unit system to write lengths in: ``units`` when it is one of :data:`LENGTH_UNITS`, else mm."""
    return units if units in LENGTH_UNITS else "mm"


def length_value(mm: float, units: str = "mm", digits: int | None = None) -> str:
    """A length as a number in ``units`` without the unit (``"31.5"``); feet and inches as ``"6 ft 2 in"``."""
    units = length_units(units)
    digits = LENGTH_DECIMALS[units] if digits is None else digits
    if units == "ft":
        inches_total = round(float(mm) / MM_PER_UNIT["in"], digits)
        sign = "-" if inches_total < 0 else ""
        feet, inches = divmod(abs(inches_total), 12)
        inches = round(inches, digits)
        if inches >= 12:
            feet, inches = feet + 1, 0.0
        if not feet:
            return f"{sign}{format_number(inches, digits)} in"
        return f"{sign}{int(feet)} ft" + (f" {format_number(inches, digits)} in" if inches else "")
    return format_number(float(mm) / MM_PER_UNIT[units], digits)


def format_length(mm: float, units: str = "mm", digits: int | None = None) -> str:
    """A length for people in their unit system: ``"1829 mm"`` -> ``"72 in"``, ``"6 ft"``, ``"182.9 cm"``."""
    units = length_units(units)
    text = length_value(mm, units, digits)
    return text if units == "ft" else f"{text} {units}"


def length_range(low_mm: float, high_mm: float, units: str = "mm") -> str:
    """A range of lengths for people: ``"11.9 to 94.4 in"``, ``"300 to 2400 mm"``, ``"11.9 in to 7 ft 10.4 in"``.

    Each end is rounded inward to :data:`LIMIT_DECIMALS`, so that a value typed as shown is allowed.
    """
    units = length_units(units)
    digits = LIMIT_DECIMALS[units]
    factor = MM_PER_UNIT["in" if units == "ft" else units]
    scale = 10 ** digits
    low = math.ceil(round(low_mm / factor * scale, 6)) / scale
    high = math.floor(round(high_mm / factor * scale, 6)) / scale
    if units == "ft":
        return f"{length_value(low * factor, 'ft', digits)} to {length_value(high * factor, 'ft', digits)}"
    return f"{format_number(low, digits)} to {format_number(high, digits)} {units}"


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
    """How long, for people: ``"1 h 02 min"``, ``"12 min 30 s"`` (``"13 min"`` unless ``precise``), ``"40 s"``.
    A figure given without its seconds is rounded to the nearest minute, not cut down to it."""
    seconds = int(round(seconds))
    if seconds >= 3600 or (seconds >= 60 and not precise):
        seconds = (seconds + 30) // 60 * 60  # half a minute up, as people round
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if precise else f"{minutes} min"
    return f"{secs} s"
