"""Name plate: a door sign or label with the customer's text raised from or cut into the plate.

The text is set in DejaVu Sans Bold, shipped in ``templates_models/fonts`` (Bitstream Vera
licence) so the result does not depend on the fonts of the machine that renders it. The
same font file gives the validation its facts: which characters it can draw (its cmap)
and how wide the text comes out (glyph advances, kerning and outlines), so text that
cannot be drawn or does not fit is refused with a reason before any geometry is built.

The plate lies on XY centred on the origin, its front face up at z = thickness.
"""

from __future__ import annotations

import io
import math
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import PrivateAttr, field_validator, model_validator

from parametric.part import Part
from parametric.registry import Check, Preset, Template, register
from parametric.schema import Mm, TemplateParams, choice, length, rule, switch, text

FONT_FILE = "DejaVuSans-Bold.ttf"
MAX_CHARACTERS = 40
MARGIN = 4.0
"""Clear border (mm) between the text and the plate's edge or a screw's countersink."""
HOLE_EDGE = 3.0
"""Material (mm) between a countersink and the end of the plate."""
MIN_FLOOR = 1.0
"""Plate left under engraved letters (mm)."""
MIN_CORNER_RADIUS = 0.5
"""Smallest rounded corner (mm); below it the corners are square (0) or the fillet fails."""
UNBUILDABLE = frozenset({0x1DA8, 0x2592, 0x2729, 0x272B, 0x272C, 0x272F, 0x2732, 0x2735})
"""Characters the font has but whose outlines the text builder turns into no valid solid (self-overlapping
star outlines, a checkerboard touching only at corners, an empty result): found by building every
character of the font, raised and engraved."""
RIGHT_TO_LEFT = ("R", "AL")
"""Bidirectional classes of right-to-left scripts (Hebrew, Arabic, ...)."""
NOT_ON_A_LINE = ("Cc", "Zl", "Zp")
"""Control characters and line or paragraph breaks: the plate carries one line."""


@dataclass(frozen=True)
class Extents:
    """The ink box of a line of text at a font size (mm): x from the pen's start, y from the baseline."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min


class FontMetrics:
    """What the shipped font can draw and how big a line of it comes out, read with fontTools."""

    def __init__(self, data: bytes) -> None:
        from fontTools.ttLib import TTFont

        # Lazy: glyphs are read when first asked for (reading all 5,900 takes most of a second).
        font = TTFont(io.BytesIO(data), lazy=True)
        self._lock = threading.Lock()  # lazy reads are not thread-safe; the web app validates in threads
        self._glyphs = font["glyf"]
        self._advances = font["hmtx"]
        self.cmap: dict[int, str] = font.getBestCmap()
        self.units_per_em: int = font["head"].unitsPerEm
        # FreeType, which draws the text, applies the legacy 'kern' table (not GPOS): so do we.
        self._kerning: dict[tuple[str, str], int] = {}
        if "kern" in font:
            for table in font["kern"].kernTables:
                self._kerning.update(getattr(table, "kernTable", {}))
        self.cap_height_units: int = self._glyphs[self.cmap[ord("H")]].yMax

    def missing(self, line: str) -> list[str]:
        """Characters of ``line`` the font has no glyph for, each once, in order."""
        return list(dict.fromkeys(ch for ch in line if ord(ch) not in self.cmap))

    def has_ink(self, line: str) -> bool:
        """Whether any character of ``line`` draws something (not only spaces or invisible marks)."""
        with self._lock:
            return any(self._glyphs[self.cmap[ord(ch)]].numberOfContours != 0 for ch in line)

    def em_size(self, cap_height: float) -> float:
        """The font size (em, mm) whose capital letters are ``cap_height`` mm tall."""
        return cap_height * self.units_per_em / self.cap_height_units

    def extents(self, line: str, em: float) -> Extents:
        """The ink box of ``line`` set left-aligned on the baseline at ``em`` mm, as the text builder sets it."""
        pen, previous = 0, None
        xs: list[int] = []
        ys: list[int] = []
        with self._lock:
            for ch in line:
                name = self.cmap[ord(ch)]
                if previous is not None:
                    pen += self._kerning.get((previous, name), 0)
                glyph = self._glyphs[name]
                if glyph.numberOfContours != 0:
                    xs += [pen + glyph.xMin, pen + glyph.xMax]
                    ys += [glyph.yMin, glyph.yMax]
                pen += self._advances[name][0]
                previous = name
        scale = em / self.units_per_em
        if not xs:
            return Extents(0.0, 0.0, 0.0, 0.0)
        return Extents(min(xs) * scale, max(xs) * scale, min(ys) * scale, max(ys) * scale)


def font_resource() -> Any:
    """The shipped font file as an importlib resource."""
    return resources.files("templates_models").joinpath("fonts", FONT_FILE)


@cache
def font_metrics() -> FontMetrics:
    """The shipped font's metrics, read once per process."""
    return FontMetrics(font_resource().read_bytes())


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    shown = repr(ch) if unicodedata.category(ch)[0] in "CZ" else f"'{ch}'"
    return f"{shown} (U+{ord(ch):04X}{' ' + name if name else ''})"


class NamePlateParams(TemplateParams):
    text: str = text("Welcome", min_length=1, max_length=MAX_CHARACTERS, order=1, group="Text",
                     description="The words on the plate, one line. Letters, digits and symbols of Latin, Greek "
                                 "and Cyrillic scripts are available.")
    text_style: Literal["embossed", "engraved"] = choice("embossed", choices=("embossed", "engraved"), order=2,
                                                         group="Text",
                                                         description="Raised letters (embossed) or letters cut "
                                                                     "into the plate (engraved).")
    letter_height: Mm = length(16, ge=4, le=60, step=0.5, order=3, group="Text",
                               description="Height of the capital letters; lower-case letters with descenders "
                                           "reach a little lower.")
    text_depth: Mm = length(1.2, ge=0.4, le=3, step=0.1, order=4, group="Text",
                            description="How far the letters stand out of the plate, or how deep they are cut in.")
    plate_width: Mm | None = length(None, ge=30, le=300, step=1, order=5,
                                    description="Width of the plate; leave empty to fit the text (with room for the "
                                                "screw holes).")
    plate_height: Mm = length(50, ge=15, le=200, step=1, order=6, description="Height of the plate.")
    thickness: Mm = length(4, ge=2, le=10, step=0.5, order=7, description="Thickness of the plate without the letters.")
    corner_radius: Mm = length(5, ge=0, le=99.5, step=0.5, order=8,
                               description="Radius of the plate's rounded corners; 0 for square corners.")
    mounting_holes: bool = switch(True, order=9,
                                  description="Two countersunk screw holes, one at each end, to screw the plate to "
                                              "a door or wall.")
    hole_diameter: Mm = length(4, ge=2.5, le=6, step=0.5, order=10,
                               description="Diameter of the screw holes (the screw's thread size).")

    _auto_width: bool = PrivateAttr(default=False)

    @field_validator("text")
    @classmethod
    def _drawable(cls, value: str) -> str:
        line = unicodedata.normalize("NFC", value).strip()
        if not line:
            raise ValueError("the text is empty or only spaces; type the words to put on the plate")
        if len(line) > MAX_CHARACTERS:  # a few characters decompose when normalised
            raise ValueError(f"the text is {len(line)} characters long once normalised; at most "
                             f"{MAX_CHARACTERS} fit the plate")
        breaks = [ch for ch in dict.fromkeys(line) if unicodedata.category(ch) in NOT_ON_A_LINE]
        if breaks:
            raise ValueError("the plate carries one line of text; remove the line breaks or control characters "
                             + ", ".join(_describe(ch) for ch in breaks))
        metrics = font_metrics()
        missing = metrics.missing(line)
        if missing:
            more = " and more" if len(missing) > 8 else ""
            raise ValueError("the font (DejaVu Sans Bold) cannot draw "
                             + ", ".join(_describe(ch) for ch in missing[:8]) + more + "; use other characters")
        broken = [ch for ch in dict.fromkeys(line) if ord(ch) in UNBUILDABLE]
        if broken:
            raise ValueError("the font's outline of " + ", ".join(_describe(ch) for ch in broken)
                             + " cannot be made into one printable solid; use other characters")
        backwards = [ch for ch in dict.fromkeys(line) if unicodedata.bidirectional(ch) in RIGHT_TO_LEFT]
        if backwards:
            raise ValueError("right-to-left scripts are not supported yet (their letters would come out unjoined "
                             "and in the wrong order): " + ", ".join(_describe(ch) for ch in backwards[:5]))
        if not metrics.has_ink(line):
            raise ValueError("the text has no visible characters to put on the plate")
        return line

    @model_validator(mode="after")
    def _derive_plate_width(self) -> NamePlateParams:
        if self.plate_width is None:
            self._auto_width = True
            self.plate_width = self.fitted_width()
        return self

    # -- derived layout (mm) -------------------------------------------------------------

    def fitted_width(self) -> float:
        """The narrowest plate (whole mm, at least 30) that holds the text between its margins and holes."""
        return float(max(30, math.ceil(self.text_extents().width + 2 * self.side_zone)))

    @property
    def width(self) -> float:
        """The plate width, given or derived from the text."""
        return self.plate_width if self.plate_width is not None else self.fitted_width()

    @property
    def em_size(self) -> float:
        """The font size (em square, mm) that gives capitals of ``letter_height``."""
        return font_metrics().em_size(self.letter_height)

    def text_extents(self) -> Extents:
        return font_metrics().extents(self.text, self.em_size)

    @property
    def hole_inset(self) -> float:
        """Distance from each end of the plate to a screw hole's centre."""
        return HOLE_EDGE + self.hole_diameter  # the countersink is twice the hole diameter across

    @property
    def side_zone(self) -> float:
        """Room kept free of text at each end: the margin, plus the screw hole and its countersink."""
        if self.mounting_holes:
            return self.hole_inset + self.hole_diameter + MARGIN
        return MARGIN

    def hole_positions(self) -> list[float]:
        """X positions of the screw holes' centres (the holes are on the horizontal centre line)."""
        if not self.mounting_holes:
            return []
        x = self.width / 2 - self.hole_inset
        return [-x, x]

    @property
    def total_thickness(self) -> float:
        return self.thickness + (self.text_depth if self.text_style == "embossed" else 0.0)

    # -- rules -------------------------------------------------------------------------

    @rule("text", "plate_width", "letter_height")
    def _text_fits_plate(self) -> str | None:
        ink = self.text_extents()
        room = self.width - 2 * self.side_zone
        holes = " and the screw holes" if self.mounting_holes else ""
        if self._auto_width and self.width > 300:
            return (f"at {self.letter_height:g} mm letter height the text is {ink.width:.0f} mm long and needs a "
                    f"{self.width:.0f} mm plate, but the widest plate is 300 mm; use smaller letters or a "
                    f"shorter text")
        if ink.width > room:
            return (f"at {self.letter_height:g} mm letter height the text is {ink.width:.0f} mm long, but a "
                    f"{self.width:g} mm plate leaves {max(room, 0):.0f} mm for it after the {MARGIN:g} mm "
                    f"margins{holes}; use smaller letters, a shorter text or a wider plate "
                    f"(or leave the width empty to fit the text)")
        if ink.height > self.plate_height - 2 * MARGIN:
            return (f"the text stands {ink.height:.1f} mm tall (capitals and descenders), but a "
                    f"{self.plate_height:g} mm high plate leaves {self.plate_height - 2 * MARGIN:g} mm inside its "
                    f"{MARGIN:g} mm margins; use smaller letters or a taller plate")
        if not self._inside_corners(ink):
            return (f"the text's corners reach into the {self.corner_radius:g} mm rounded corners of the plate; "
                    f"use a smaller corner radius, smaller letters or a bigger plate")
        return None

    def _inside_corners(self, ink: Extents) -> bool:
        """Whether the text's box, centred, keeps the margin from the rounded corners too."""
        half_x, half_y = ink.width / 2, ink.height / 2
        radius = self.corner_radius
        centre_x, centre_y = self.width / 2 - radius, self.plate_height / 2 - radius
        if half_x <= centre_x or half_y <= centre_y:
            return True
        return math.hypot(half_x - centre_x, half_y - centre_y) <= radius - MARGIN

    @rule("corner_radius", "plate_height")
    def _corners_fit(self) -> str | None:
        if 0 < self.corner_radius < MIN_CORNER_RADIUS:
            return (f"a {self.corner_radius:g} mm corner radius is too small to make or see; use 0 for square "
                    f"corners or at least {MIN_CORNER_RADIUS:g} mm")
        most = min(self.width, self.plate_height) / 2 - 0.5
        if self.corner_radius > most:
            return (f"the corner radius must be less than half the plate's height and width (at most {most:g} mm), "
                    f"or the rounded corners would meet")
        return None

    @rule("hole_diameter", "plate_height")
    def _holes_fit(self) -> str | None:
        if self.mounting_holes and 2 * self.hole_diameter + 2 * HOLE_EDGE > self.plate_height:
            return (f"a {self.hole_diameter:g} mm screw's countersink is {2 * self.hole_diameter:g} mm across and "
                    f"needs a plate at least {2 * self.hole_diameter + 2 * HOLE_EDGE:g} mm high; use a smaller "
                    f"screw, a taller plate or no holes")
        return None

    @rule("hole_diameter", "thickness")
    def _countersink_fits(self) -> str | None:
        if self.mounting_holes and self.hole_diameter / 2 + 0.5 > self.thickness:
            return (f"the countersink of a {self.hole_diameter:g} mm screw is {self.hole_diameter / 2:g} mm deep "
                    f"and needs a plate at least {self.hole_diameter / 2 + 0.5:g} mm thick")
        return None

    @rule("text_depth", "thickness")
    def _engraving_leaves_floor(self) -> str | None:
        if self.text_style == "engraved" and self.text_depth > self.thickness - MIN_FLOOR:
            return (f"engraved letters {self.text_depth:g} mm deep would leave less than {MIN_FLOOR:g} mm of a "
                    f"{self.thickness:g} mm plate; cut them at most {self.thickness - MIN_FLOOR:g} mm deep")
        return None


@register
class NamePlate(Template):
    id = "name_plate"
    version = "1.0.0"
    name = "Name plate"
    family = "home"
    process = ("fdm",)
    materials = ("pla", "petg", "asa")
    description = ("A door sign or name plate with your text raised from or engraved into a plate with rounded "
                   "corners, optionally with two countersunk screw holes.")
    Params = NamePlateParams
    groups = ("Text", "Dimensions", "Options")
    presets = {
        "door-sign": Preset("Door sign", {"text": "Meeting Room", "letter_height": 14, "plate_height": 45,
                                          "thickness": 4},
                            description="An office or house door sign with screw holes.", material="asa"),
        "desk-label": Preset("Desk name label", {"text": "Dr. Ana Müller", "letter_height": 10, "plate_height": 28,
                                                 "thickness": 3, "corner_radius": 3, "mounting_holes": False,
                                                 "text_style": "engraved", "text_depth": 1},
                             description="A small label to stick on a desk, shelf or box."),
        "house-number": Preset("House number", {"text": "42", "letter_height": 50, "plate_height": 90,
                                                "plate_width": 160, "thickness": 6, "corner_radius": 12,
                                                "text_depth": 2, "hole_diameter": 5},
                               description="A big weather-proof house number.", material="asa"),
    }

    def build(self, p: NamePlateParams) -> list[Part]:
        import cadquery as cq

        width, height, thickness = p.width, p.plate_height, p.thickness
        half_x, half_y = width / 2, height / 2
        outline = cq.Wire.makePolygon([(-half_x, -half_y, 0), (half_x, -half_y, 0), (half_x, half_y, 0),
                                       (-half_x, half_y, 0)], close=True)
        if p.corner_radius > 0:
            outline = outline.fillet(p.corner_radius)
        plate = cq.Workplane("XY").add(cq.Solid.extrudeLinear(cq.Face.makeFromWires(outline),
                                                              cq.Vector(0, 0, thickness)))
        if p.mounting_holes:
            plate = (plate.faces(">Z").workplane(centerOption="ProjectedOrigin", origin=(0, 0, thickness))
                     .pushPoints([(x, 0) for x in p.hole_positions()])
                     .cskHole(p.hole_diameter, cskDiameter=2 * p.hole_diameter, cskAngle=90))

        # Set on the baseline from the pen's start, then moved so the ink box is centred on the plate:
        # the same numbers the fit rule checked.
        ink = p.text_extents()
        origin_x, origin_y = -(ink.x_min + ink.x_max) / 2, -(ink.y_min + ink.y_max) / 2
        # The letters meet the front face exactly (raised letters stand on it, engraved ones end in
        # it): coplanar faces make the Boolean three to four times faster than letters crossing it.
        base = thickness if p.text_style == "embossed" else thickness - p.text_depth
        with resources.as_file(font_resource()) as font_path:
            letters = cq.Compound.makeText(p.text, p.em_size, p.text_depth, fontPath=str(font_path), halign="left",
                                           valign="bottom", position=cq.Plane(origin=(origin_x, origin_y, base)))
        # One tool per glyph: glyphs may overlap (kerned pairs, accents), which one compound must not.
        glyphs = letters.Solids()
        solid = plate.val()
        solid = solid.fuse(*glyphs) if p.text_style == "embossed" else solid.cut(*glyphs)
        try:
            merged = solid.clean()
        except Exception:  # noqa: BLE001 - OCCT's face merging trips on a few glyph outlines (e.g. U+273C)
            merged = solid
        if not merged.isValid():
            merged = solid  # the unmerged solid is valid; merging coplanar faces only tidies it
        return [Part("plate", cq.Workplane("XY").add(merged), process="fdm")]

    def expected_size(self, p: NamePlateParams) -> tuple[float, float, float]:
        return (p.width, p.plate_height, p.total_thickness)

    def quality_checks(self, p: NamePlateParams) -> list[Check]:
        checks = [
            Check("Plate width", p.width, 0.3),
            Check("Plate height", p.plate_height, 0.3),
            Check("Plate thickness", p.thickness, 0.2),
            Check("Capital letter height", p.letter_height, 0.3),
            Check("Letter relief" if p.text_style == "embossed" else "Engraving depth", p.text_depth, 0.2),
        ]
        if p.mounting_holes:
            checks.append(Check("Screw hole spacing", 2 * (p.width / 2 - p.hole_inset), 0.3))
        return checks
