"""Slicing with PrusaSlicer's command line, with a profile from :mod:`.profile`.

The part's envelope is checked before PrusaSlicer runs, because PrusaSlicer aborts with
SIGABRT on parts that do not fit.

PrusaSlicer writes its estimates as comments near the end of the G-code; they are read back
into :class:`Estimates` (seconds, filament mm, cm3, grams, cost). Sliced plates are cached
by the STL's hash, the profile and the slicer binary, so a repeated job is not sliced twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    FieldError,
    ParametricError,
    ToolMissing,
    ToolTimeout,
    ValidationError,
    not_installed,
    overran,
    time_limit,
)
from ..files import ContentMismatch, atomic_target, atomic_write, atomic_write_json, place, sha256_file
from ..machines import Printer
from ..routing import fits
from .gcode import extrusion_bounds
from .profile import PrintSettings, border_mm, build_profile, profile_text

log = logging.getLogger(__name__)

SLICER = "prusa-slicer"
TAIL_BYTES = 64 * 1024
"""The estimates sit before the config dump (about 12 KB) at the end of the file."""


class SlicerError(ParametricError):
    """PrusaSlicer is missing or failed on a plate; ``reason`` says which and why."""

    def __init__(self, reason: str, returncode: int | None = None, output: str = ""):
        self.reason = reason
        self.returncode = returncode
        self.output = output
        super().__init__(reason)


class SlicerMissing(ToolMissing, SlicerError):
    """PrusaSlicer is not installed here: a fault of the machine, retried once it is installed."""


class SlicerTimeout(ToolTimeout, SlicerError):
    """PrusaSlicer ran longer than its time limit and was killed (:func:`slicer_timeout_s`)."""


DEFAULT_SLICER_TIMEOUT_S = 600.0


def slicer_timeout_s() -> float | None:
    """PrusaSlicer's time limit per run: ``$PARAMETRIC_SLICER_TIMEOUT_SECONDS`` (0 for none), else 600 s."""
    return time_limit("PARAMETRIC_SLICER_TIMEOUT_SECONDS", DEFAULT_SLICER_TIMEOUT_S)


def run_slicer(command: list[str], name: str) -> subprocess.CompletedProcess[str]:
    """Run PrusaSlicer's ``command`` within :func:`slicer_timeout_s`; past it, it is killed (:class:`SlicerTimeout`)."""
    limit = slicer_timeout_s()
    try:
        return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=limit)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise SlicerTimeout(overran("PrusaSlicer", limit or 0, name)) from None


class PlateTooFull(SlicerError):
    """The parts did not fit on one plate as PrusaSlicer arranged them (it could not fit them, or they would
    extrude beyond the bed): fewer per plate."""


@dataclass(frozen=True)
class Estimates:
    """What PrusaSlicer expects a plate to take: time in seconds, filament in mm, cm3 and grams, and its cost."""

    print_time_s: float
    filament_mm: float
    filament_cm3: float
    filament_g: float
    cost: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def __add__(self, other: Estimates) -> Estimates:
        return Estimates(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


NO_ESTIMATES = Estimates(0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass
class SliceResult:
    """One sliced plate: the G-code, what is on it, the estimates, and where the time went."""

    gcode: Path
    profile: Path
    part: str
    copies: int
    estimates: Estimates
    slicer_s: float
    ours_s: float
    cached: bool
    command: list[str] = field(default_factory=list)
    supports: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "copies": self.copies, "gcode": self.gcode.name, "profile": self.profile.name,
                "estimates": self.estimates.to_dict(), "cached": self.cached, "supports": self.supports,
                "timings": {"slicer_s": round(self.slicer_s, 4), "ours_s": round(self.ours_s, 4)}}


# -- reading the estimates ----------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ESTIMATE_LINES = {
    "filament_mm": re.compile(r"^; filament used \[mm\] = ([\d.,\s]+)$", re.M),
    "filament_cm3": re.compile(r"^; filament used \[cm3\] = ([\d.,\s]+)$", re.M),
    "filament_g": re.compile(r"^; filament used \[g\] = ([\d.,\s]+)$", re.M),
    "cost": re.compile(r"^; total filament cost = ([\d.,\s]+)$", re.M),
}
_TIME_LINE = re.compile(r"^; estimated printing time \(normal mode\) = (.+)$", re.M)


def parse_duration(text: str) -> float:
    """Seconds in PrusaSlicer's duration text: ``"20m 6s"``, ``"1h 2m 3s"``, ``"1d 2h 5m"``."""
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(f"not a PrusaSlicer duration: {text!r}")
    return float(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


def parse_estimates(text: str) -> Estimates:
    """The estimates in the end-of-file comments of PrusaSlicer G-code (summed over extruders)."""
    values: dict[str, float] = {}
    for key, pattern in _ESTIMATE_LINES.items():
        match = pattern.search(text)
        if match is None:
            if key == "cost":  # older versions write only the per-extruder line
                match = re.search(r"^; filament cost = ([\d.,\s]+)$", text, re.M)
            if match is None:
                raise ValueError(f"no '{pattern.pattern[2:].split(' =')[0]}' line in the G-code")
        values[key] = sum(float(v) for v in match.group(1).replace(" ", "").split(",") if v)
    time_match = _TIME_LINE.search(text)
    if time_match is None:
        raise ValueError("no 'estimated printing time (normal mode)' line in the G-code")
    return Estimates(print_time_s=parse_duration(time_match.group(1).strip()), **values)


def read_estimates(gcode: str | os.PathLike[str]) -> Estimates:
    """The estimates of a G-code file, reading only its tail."""
    with open(gcode, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read().decode("utf-8", "replace")
    try:
        return parse_estimates(tail)
    except ValueError:
        if size <= TAIL_BYTES:
            raise
        return parse_estimates(Path(gcode).read_text("utf-8", "replace"))


# -- running the slicer -----------------------------------------------------------------


def slicer_path() -> str:
    """The PrusaSlicer binary, or a SlicerError saying how to install it."""
    found = shutil.which(os.environ.get("PARAMETRIC_PRUSA_SLICER", SLICER))
    if found is None:
        raise SlicerMissing(not_installed("PrusaSlicer", "prusa-slicer"))
    return found


def _slicer_identity() -> str:
    """The slicer binary's path, size and mtime: part of the slice cache key without running it."""
    path = slicer_path()
    stat = os.stat(path)
    return f"{path}:{stat.st_size}:{int(stat.st_mtime)}"


def fits_printer(size_mm: Sequence[float], printer: Printer) -> tuple[bool, bool, str]:
    """(fits, needs a quarter turn about Z, reason) for a part of ``size_mm`` on ``printer``'s bed."""
    x, y, z = (float(v) for v in size_mm)
    bx, by, bz = printer.build_volume_mm
    if z > bz + 1e-6:
        return False, False, f"{z:g} mm tall; {printer.name} prints up to {bz:g} mm high"
    on_bed, turned = fits(size_mm, printer.build_volume_mm)
    if on_bed:
        return True, turned, ""
    return False, False, f"{max(x, y):g} x {min(x, y):g} mm; the bed of {printer.name} is {bx:g} x {by:g} mm"


@dataclass(frozen=True)
class PlateItem:
    """One part on a plate: its STL, its size (mm, as the manifest measured it), how many copies."""

    stl: Path
    size_mm: tuple[float, float, float]
    copies: int = 1
    part: str = ""
    stl_sha256: str | None = None

    @property
    def name(self) -> str:
        return self.part or Path(self.stl).stem


def slice_part(stl: str | os.PathLike[str], size_mm: Sequence[float], printer: Printer, material_id: str,
               out: str | os.PathLike[str], *, copies: int = 1, settings: PrintSettings | None = None,
               stl_sha256: str | None = None, part: str | None = None, use_cache: bool = True) -> SliceResult:
    """Slice ``copies`` of one STL onto one plate of ``printer`` into ``out`` (a .gcode path), atomically.

    Checks the envelope first (PrusaSlicer aborts on parts that do not fit), turns the part a
    quarter turn when only that fits, and reuses a cached plate for the same STL, profile and
    slicer. Raises ValidationError when the part cannot fit and SlicerError when PrusaSlicer fails.
    """
    item = PlateItem(Path(stl), tuple(float(v) for v in size_mm), copies, part or "", stl_sha256)  # type: ignore[arg-type]
    return slice_plate([item], printer, material_id, out, settings=settings, use_cache=use_cache)


def slice_plate(items: Sequence[PlateItem], printer: Printer, material_id: str, out: str | os.PathLike[str], *,
                settings: PrintSettings | None = None, use_cache: bool = True) -> SliceResult:
    """Slice several parts (with copies) onto one plate, arranged by PrusaSlicer (``--merge``).

    Every part is checked against the bed first, with its brim; parts that fit only turned a quarter
    turn must be alone on their plate (PrusaSlicer turns a whole plate, not one object). A lone part
    that needs the bed up to its edges is printed without a skirt. The first layers of the G-code are
    read back and a plate that extrudes beyond the bed is refused, never offered.
    """
    started = time.perf_counter()
    settings = settings or PrintSettings()
    problems = settings.problems(printer)
    if not items:
        problems.append(FieldError("plate", "a plate needs at least one part"))
    turns = set()
    for item in items:
        on_bed, turned, reason = fits_printer(item.size_mm, printer)
        if not on_bed:
            problems.append(FieldError("machine", f"{item.name}: {reason}" if len(items) > 1 else reason))
        elif settings.brim_width_mm and not fits(item.size_mm, printer.build_volume_mm,
                                                 border_mm(printer, settings, skirt=False))[0]:
            problems.append(FieldError("brim", f"{item.name} with a {settings.brim_width_mm:g} mm brim does not fit "
                                               f"the bed of {printer.name}; print it without a brim"))
        turns.add(turned)
    if len(turns) > 1:
        problems.append(FieldError("plate", "parts that fit only turned a quarter turn need a plate of their own"))
    if problems:
        raise ValidationError(problems)
    turned = turns.pop()
    out = Path(out)
    skirt = True
    if len(items) == 1 and items[0].copies == 1:  # a lone part keeps its skirt if it fits some way round with it
        skirt, turned_with_skirt = fits(items[0].size_mm, printer.build_volume_mm, border_mm(printer, settings))
        turned = turned_with_skirt if skirt else turned
    ini = profile_text(build_profile(printer, material_id, settings, skirt=skirt))
    profile_path = atomic_write(out.with_suffix(".ini"), ini)
    arguments = ["--loglevel", "1", "--export-gcode"]
    if turned:
        arguments += ["--rotate", "90"]
    sources = []
    if len(items) == 1 and items[0].copies > 1:
        arguments += ["--duplicate", str(items[0].copies)]
        sources = [str(items[0].stl)]
    else:
        sources = [str(item.stl) for item in items for _ in range(item.copies)]
        if len(sources) > 1:
            arguments.append("--merge")
    digests = [item.stl_sha256 or hashlib.sha256(Path(item.stl).read_bytes()).hexdigest() for item in items]
    layout = [[digest, item.copies] for digest, item in zip(digests, items, strict=True)]
    key = hashlib.sha256(json.dumps([layout, ini, arguments, _slicer_identity()]).encode()).hexdigest()
    entry = _slice_cache_root() / key[:2] / key
    name = "+".join(item.name for item in items)
    copies = sum(item.copies for item in items)
    if use_cache:
        estimates = _cached_slice(entry, out)
        if estimates is not None:
            return SliceResult(out, profile_path, name, copies, estimates, 0.0, time.perf_counter() - started, True,
                               supports=settings.supports)

    command = [slicer_path(), "--load", str(profile_path), *arguments]
    with atomic_target(out) as target:
        full = [*command, "-o", str(target), *sources]
        slicer_started = time.perf_counter()
        completed = run_slicer(full, name)
        slicer_s = time.perf_counter() - slicer_started
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()
            if "could not fit" in output:
                raise PlateTooFull(f"PrusaSlicer could not fit {copies} x {name} on the bed of {printer.name}",
                                  completed.returncode, output)
            tail = "; ".join(line for line in output.splitlines()[-4:] if "[trace]" not in line)
            raise SlicerError(f"PrusaSlicer failed on {name} (exit {completed.returncode}): {tail}",
                              completed.returncode, output)
        estimates = read_estimates(target)
        _check_on_bed(target, printer, f"{copies} x {name}")
        if use_cache:
            _store_slice(entry, target, estimates)
    ours_s = time.perf_counter() - started - slicer_s
    return SliceResult(out, profile_path, name, copies, estimates, slicer_s, ours_s, False, full,
                       supports=settings.supports)


def slice_placed(objects: Sequence[str | os.PathLike[str]], printer: Printer, material_id: str,
                 out: str | os.PathLike[str], *, settings: PrintSettings | None = None, skirt: bool = True,
                 name: str = "plate", verify: Callable[[Path], None] | None = None) -> SliceResult:
    """Slice STLs already placed on the bed (in bed coordinates) as one plate, keeping their positions
    (``--dont-arrange --merge``), into ``out`` atomically; each object is labelled in the G-code by its file name.

    PrusaSlicer checks neither the bed nor overlaps in this mode, so the layout must have been checked before
    (:func:`~parametric.fdm.packing.check_plates`); ``verify`` is called on the sliced G-code before it replaces
    ``out`` and refuses it by raising. Raises :class:`SlicerError` when PrusaSlicer fails.
    """
    started = time.perf_counter()
    settings = settings or PrintSettings()
    problems = settings.problems(printer)
    if not objects:
        problems.append(FieldError("plate", "a plate needs at least one object"))
    if problems:
        raise ValidationError(problems)
    out = Path(out)
    ini = profile_text(build_profile(printer, material_id, settings, skirt=skirt))
    profile_path = atomic_write(out.with_suffix(".ini"), ini)
    arguments = ["--loglevel", "1", "--export-gcode", "--dont-arrange"] + (["--merge"] if len(objects) > 1 else [])
    command = [slicer_path(), "--load", str(profile_path), *arguments]
    with atomic_target(out) as target:
        full = [*command, "-o", str(target), *(str(path) for path in objects)]
        slicer_started = time.perf_counter()
        completed = run_slicer(full, name)
        slicer_s = time.perf_counter() - slicer_started
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip()
            tail = "; ".join(line for line in output.splitlines()[-4:] if "[trace]" not in line)
            raise SlicerError(f"PrusaSlicer failed on {name} (exit {completed.returncode}): {tail}",
                              completed.returncode, output)
        estimates = read_estimates(target)
        if verify is not None:
            verify(target)
    ours_s = time.perf_counter() - started - slicer_s
    return SliceResult(out, profile_path, name, len(objects), estimates, slicer_s, ours_s, False, full)


FIRST_LAYERS_CHECKED = 2
"""Layers of a sliced plate whose extrusion is compared with the bed: the skirt and the brim are on the first."""


def _check_on_bed(gcode: Path, printer: Printer, what: str) -> None:
    """Refuse a plate whose first layers extrude beyond the bed (PrusaSlicer checks nothing there)."""
    bounds = extrusion_bounds(gcode, layers=FIRST_LAYERS_CHECKED)
    x, y = printer.build_volume_mm[:2]
    if bounds is not None and not bounds.inside(x, y):
        raise PlateTooFull(f"the plate of {what} would extrude beyond the bed of {printer.name} (X {bounds.x_min:.1f} "
                          f"to {bounds.x_max:.1f}, Y {bounds.y_min:.1f} to {bounds.y_max:.1f} mm on a {x:g} x {y:g} mm "
                          "bed); fewer copies per plate")


def estimate_part(stl: str | os.PathLike[str], size_mm: Sequence[float], printer: Printer, material_id: str, *,
                  settings: PrintSettings | None = None, stl_sha256: str | None = None, part: str | None = None
                  ) -> SliceResult:
    """PrusaSlicer's estimates for one copy of a part on ``printer``, for a quote.

    The part is sliced once and then answered from the slice cache (the same cache jobs use),
    so quoting a configuration again costs a hash lookup. The G-code is not kept: the result's
    ``gcode`` path is gone when this returns; its ``estimates`` are what a quote needs.
    """
    import tempfile

    root = _slice_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".estimate-", dir=root) as scratch:
        return slice_part(stl, size_mm, printer, material_id, Path(scratch) / "part.gcode", settings=settings,
                          stl_sha256=stl_sha256, part=part)


SLICE_RECORD = "record.json"
"""The slice cache entry's record of its G-code (size and SHA-256), written last: an entry without it is partial."""


def _store_slice(entry: Path, gcode: Path, estimates: Estimates) -> None:
    """Keep a sliced plate in the cache entry ``entry``: the G-code (read-only), its estimates, then its record."""
    entry.mkdir(parents=True, exist_ok=True)
    (entry / SLICE_RECORD).unlink(missing_ok=True)  # a broken entry being replaced is partial until the end
    size, digest = sha256_file(gcode)
    place(gcode, entry / "plate.gcode", size=size, sha256=digest)
    atomic_write_json(entry / "estimates.json", estimates.to_dict())
    atomic_write_json(entry / SLICE_RECORD, {"file": "plate.gcode", "bytes": size, "sha256": digest})


def _cached_slice(entry: Path, out: Path) -> Estimates | None:
    """The estimates of the cached plate ``entry``, its G-code copied to ``out`` and checked (size and SHA-256
    against the entry's record, on the copy handed out); ``None`` when the entry is missing, partial or damaged
    (a damaged one is removed, so the plate is sliced again and never handed out broken)."""
    try:
        record = json.loads((entry / SLICE_RECORD).read_text("utf-8"))
        estimates = Estimates(**json.loads((entry / "estimates.json").read_text("utf-8")))
        place(entry / "plate.gcode", out, size=int(record["bytes"]), sha256=str(record["sha256"]))
    except FileNotFoundError:
        return None
    except (ContentMismatch, ValueError, TypeError, KeyError) as error:  # an OSError (a full disk) is raised
        log.warning("slice cache entry %s is damaged (%s): removed, slicing again",
                                            entry.name, error)
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return estimates


def _slice_cache_root() -> Path:
    from ..cache import output_root

    return output_root() / "cache" / "slices"


def total_estimates(results: Sequence[SliceResult]) -> Estimates:
    total = NO_ESTIMATES
    for result in results:
        total = total + result.estimates
    return total


