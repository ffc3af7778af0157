"""Shoe sizes at the edge: "EU 42", "UK 8", "US M 9.5" become a foot length in millimetres.

The size table lives in ``templates_models/data/shoe_sizes.csv`` (system, size, foot length).
:class:`FootParams` is the base of every footwear parameter model: it carries the foot
length, an optional shoe size that sets it, and the foot width.
"""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import PrivateAttr, field_validator, model_validator

from parametric.schema import Mm, TemplateParams, choice, length, rule, text

SYSTEMS = ("EU", "UK", "US-M", "US-W")
"""Size systems in the table: European, British, US men's and US women's."""

STANDARD_FOOT_LENGTH = 265.0
"""The foot length (mm) a configuration stands for when it gives neither a foot length nor a shoe size."""

FOOT_LENGTH_TOLERANCE = 3.0
"""How far (mm) a given foot length may differ from the one its shoe size stands for."""

_SIZE_TEXT = re.compile(
    r"""^\s*(?P<system>EU|EUR|UK|US)\s*[-_ ]?\s*
        (?P<gender>M|W|MEN|WOMEN|MENS|WOMENS|MEN'S|WOMEN'S|L)?\s*
        (?P<size>\d{1,2}(?:[.,]\d+)?)\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


@lru_cache(maxsize=1)
def size_table() -> dict[tuple[str, float], float]:
    """Foot length in mm for each (system, size) of the shoe-size table."""
    raw = resources.files("templates_models.data").joinpath("shoe_sizes.csv").read_text(encoding="utf-8")
    lines = [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]
    return {(row["system"], float(row["size"])): float(row["foot_length_mm"])
            for row in csv.DictReader(io.StringIO("\n".join(lines)))}


def size_ranges() -> dict[str, tuple[float, float]]:
    """The smallest and largest size of each system in the table."""
    ranges: dict[str, tuple[float, float]] = {}
    for (system, size) in size_table():
        low, high = ranges.get(system, (size, size))
        ranges[system] = (min(low, size), max(high, size))
    return ranges


def _ranges_text() -> str:
    return ", ".join(f"{system} {low:g}-{high:g}" for system, (low, high) in size_ranges().items())


def parse_shoe_size(value: str) -> tuple[str, float]:
    """The (system, size) a text such as ``"US M 9.5"`` names; ValueError if it is not in the table."""
    match = _SIZE_TEXT.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a shoe size; write a system and a size such as 'EU 42', 'UK 8', "
                         f"'US M 9.5' or 'US W 8' (systems: {', '.join(SYSTEMS)}; sizes: {_ranges_text()}, "
                         f"in half sizes)")
    system = match.group("system").upper()
    system = "EU" if system == "EUR" else system
    gender = (match.group("gender") or "").upper().replace("'", "")
    if system == "US":
        if not gender:
            raise ValueError(f"{value!r} does not say whether it is a US men's or women's size; write "
                             f"'US M {match.group('size')}' or 'US W {match.group('size')}'")
        system = "US-W" if gender in ("W", "WOMEN", "WOMENS", "L") else "US-M"
    elif gender:
        raise ValueError(f"{value!r}: only US sizes come in men's (M) and women's (W); "
                         f"write it as '{system} {match.group('size')}'")
    size = float(match.group("size").replace(",", "."))
    if (system, size) not in size_table():
        low, high = size_ranges()[system]
        raise ValueError(f"{system} {size:g} is not in the shoe-size table; {system} sizes go from {low:g} to "
                         f"{high:g} in half sizes (sizes: {_ranges_text()})")
    return system, size


def foot_length_from_size(value: str) -> float:
    """The foot length in mm for a shoe size written like ``"EU 42"``, ``"UK 8"``, ``"US M 9.5"``, ``"US W 8"``."""
    return size_table()[parse_shoe_size(value)]


def format_shoe_size(system: str, size: float) -> str:
    """The canonical spelling of a size: ``"EU 42"``, ``"US-W 8.5"``."""
    return f"{system} {size:g}"


class FootParams(TemplateParams):
    """Foot measurements shared by every footwear template: a foot length or a shoe size that stands for one (give
    either; the other is worked out), the foot width, and which foot (or both, as a pair) is made."""

    foot_length: Mm | None = length(None, ge=180, le=340, step=1, order=1,
                                    description="Length of the bare foot from the back of the heel to the tip of "
                                                "the longest toe, standing. Leave it empty if you give a shoe size "
                                                "instead.")
    shoe_size: str | None = text(None, max_length=24, order=2, group="Dimensions",
                                 description="Your usual shoe size, instead of a measured foot length: the foot "
                                             "length is then taken from our size table. Leave it empty if you "
                                             "give the foot length.",
                                 allowed="a size such as EU 42, UK 8, US M 9.5 or US W 8 (" + _ranges_text()
                                         + ", in half sizes)")
    foot_width: Mm = length(100, ge=60, le=140, step=1, order=3,
                            description="Width of the foot across the ball (the widest part of the forefoot), "
                                        "standing.")
    side: Literal["pair", "left", "right"] = choice(
        "pair", choices=("pair", "left", "right"), order=4, group="Dimensions",
        description="A pair (a left and a right, mirrored, made as two parts), or one for the left or the right "
                    "foot only.")

    _measured_foot_length: float | None = PrivateAttr(default=None)

    @field_validator("shoe_size")
    @classmethod
    def _known_shoe_size(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return format_shoe_size(*parse_shoe_size(value))

    @model_validator(mode="after")
    def _foot_length_from_shoe_size(self) -> FootParams:
        if self.shoe_size is not None:
            self._measured_foot_length = self.foot_length  # None unless both were given
            self.foot_length = foot_length_from_size(self.shoe_size)
        elif self.foot_length is None:
            self.foot_length = STANDARD_FOOT_LENGTH
        return self

    def for_side(self, side: Literal["left", "right"]) -> FootParams:
        """These parameters for one foot: a pair is made as a left and a right part from the same values."""
        return self.model_copy(update={"side": side})

    @rule("shoe_size", "foot_length")
    def _size_agrees_with_length(self) -> str | None:
        measured = self._measured_foot_length
        if measured is not None and abs(measured - self.foot_length) > FOOT_LENGTH_TOLERANCE:
            return (f"you gave both a shoe size and a foot length, and they disagree: {self.shoe_size} stands "
                    f"for a {self.foot_length:g} mm foot, the foot length given is {measured:g} mm. Clear one of "
                    f"them, or make them agree within {FOOT_LENGTH_TOLERANCE:g} mm")
        return None

    @rule("foot_width", "foot_length")
    def _foot_proportions(self) -> str | None:
        ratio = self.foot_width / self.foot_length
        if not 0.30 <= ratio <= 0.46:
            return (f"a foot {self.foot_width:g} mm wide and {self.foot_length:g} mm long is outside human "
                    f"proportions: the width must be between 30% and 46% of the length "
                    f"({0.30 * self.foot_length:.0f} to {0.46 * self.foot_length:.0f} mm); check both measurements")
        return None
