"""G-code checked by LinuxCNC's standalone interpreter, ``rs274`` (Debian ``linuxcnc-uspace``).

``rs274 -g -t tool.tbl job.ngc out.canon`` runs a program without a machine and writes the
canonical machining calls it makes (``STRAIGHT_TRAVERSE``, ``STRAIGHT_FEED``, ``ARC_FEED``,
...); it exits non-zero with a precise message on anything the interpreter refuses. GRBL's
own ``$`` commands are not G-code, so they are stripped first. :class:`Canon` holds the
parsed moves so tests and the CLI can measure what a program really cuts: its extents at
depth, how deep it goes inside a region, where it lifts over tabs.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParametricError, ToolMissing, ToolTimeout, not_installed, overran, time_limit

INTERPRETER = "rs274"
_CALL = re.compile(r"^\s*\d+\s+N\S*\s+([A-Z_]+)\((.*)\)\s*$")

Point3 = tuple[float, float, float]


class InterpreterError(ParametricError):
    """rs274 is missing, or refused a program; ``message`` is its own words."""

    def __init__(self, program: str, message: str):
        self.program = program
        self.message = message
        super().__init__(f"{program}: {message}")


class InterpreterMissing(ToolMissing, InterpreterError):
    """rs274 is not installed here: a fault of the machine, retried once it is installed."""


class InterpreterTimeout(ToolTimeout, InterpreterError):
    """rs274 ran longer than its time limit (:func:`interpreter_timeout_s`) and was killed."""


DEFAULT_INTERPRETER_TIMEOUT_S = 120.0


def interpreter_timeout_s() -> float | None:
    """rs274's time limit per program: ``$PARAMETRIC_RS274_TIMEOUT_SECONDS`` (0 for none), else 120 s."""
    return time_limit("PARAMETRIC_RS274_TIMEOUT_SECONDS", DEFAULT_INTERPRETER_TIMEOUT_S)


@dataclass(frozen=True)
class Move:
    """One canonical move: ``rapid``, ``feed`` or ``arc``, from ``start`` to ``end`` (mm), at ``feed`` mm/min."""

    kind: str
    start: Point3
    end: Point3
    feed: float
    center: tuple[float, float] | None = None
    clockwise: bool = False

    def points(self, step_deg: float = 5.0) -> list[Point3]:
        """The move as points (arcs sampled every ``step_deg``), start included."""
        if self.kind != "arc" or self.center is None:
            return [self.start, self.end]
        cx, cy = self.center
        a0 = math.atan2(self.start[1] - cy, self.start[0] - cx)
        a1 = math.atan2(self.end[1] - cy, self.end[0] - cx)
        radius = math.hypot(self.start[0] - cx, self.start[1] - cy)
        sweep = (a1 - a0) % (2 * math.pi)
        if self.clockwise:
            sweep = sweep - 2 * math.pi if sweep > 0 else -2 * math.pi
        elif sweep == 0:
            sweep = 2 * math.pi
        count = max(2, int(abs(math.degrees(sweep)) / step_deg) + 1)
        return [(cx + radius * math.cos(a0 + sweep * i / (count - 1)),
                 cy + radius * math.sin(a0 + sweep * i / (count - 1)),
                 self.start[2] + (self.end[2] - self.start[2]) * i / (count - 1)) for i in range(count)]


@dataclass
class Canon:
    """The canonical calls of one or more programs, with the moves parsed."""

    moves: list[Move] = field(default_factory=list)
    tools: list[int] = field(default_factory=list)
    """The tool numbers loaded (``M6``), in order."""
    spindle_rpm: list[float] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def extend(self, other: Canon) -> None:
        self.moves.extend(other.moves)
        self.tools.extend(other.tools)
        self.spindle_rpm.extend(other.spindle_rpm)
        self.calls.extend(other.calls)

    @property
    def cutting(self) -> list[Move]:
        """Feed and arc moves (the tool moving under power, not rapids)."""
        return [m for m in self.moves if m.kind != "rapid"]

    def cut_points(self, below_z: float = 0.0) -> list[Point3]:
        """Every point of a cutting move that is below ``below_z`` (inside the stock when Z0 is its top)."""
        points = []
        for move in self.cutting:
            points.extend(p for p in move.points() if p[2] < below_z - 1e-9)
        return points

    def extents(self, below_z: float = 0.0) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the tool centre while cutting below ``below_z``."""
        points = self.cut_points(below_z)
        if not points:
            raise ValueError(f"no cutting move below Z{below_z:g}")
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return (min(xs), min(ys), max(xs), max(ys))

    def deepest(self) -> float:
        return min(p[2] for m in self.cutting for p in m.points())

    def deepest_within(self, region: Any) -> float | None:
        """The lowest Z the tool centre reaches while cutting inside a shapely ``region`` (None if never)."""
        import shapely

        lowest = None
        for move in self.cutting:
            for point in move.points():
                if (lowest is None or point[2] < lowest) and shapely.contains_xy(region, point[0], point[1]):
                    lowest = point[2]
        return lowest

    def time_s(self, rapid_mm_min: float) -> float:
        """Time of the moves at their feeds (rapids at ``rapid_mm_min``), in seconds."""
        total = 0.0
        for move in self.moves:
            points = move.points()
            length = sum(math.dist(a, b) for a, b in zip(points, points[1:], strict=False))
            rate = rapid_mm_min if move.kind == "rapid" else move.feed
            total += length / rate * 60 if rate > 0 else 0.0
        return total


def parse_canon(text: str) -> Canon:
    """Parse rs274's canonical output (XY plane programs)."""
    canon = Canon()
    position: Point3 = (0.0, 0.0, 0.0)
    feed = 0.0
    selected: int | None = None
    for line in text.splitlines():
        match = _CALL.match(line)
        if not match:
            continue
        name, raw = match.groups()
        canon.calls.append(name)
        arguments = [a.strip() for a in raw.split(",")] if raw.strip() else []
        if name in ("STRAIGHT_TRAVERSE", "STRAIGHT_FEED", "STRAIGHT_PROBE"):
            end = (float(arguments[0]), float(arguments[1]), float(arguments[2]))
            canon.moves.append(Move("rapid" if name == "STRAIGHT_TRAVERSE" else "feed", position, end, feed))
            position = end
        elif name == "ARC_FEED":
            x, y, cx, cy = (float(v) for v in arguments[:4])
            rotation, z = int(float(arguments[4])), float(arguments[5])
            end = (x, y, z)
            canon.moves.append(Move("arc", position, end, feed, (cx, cy), rotation < 0))
            position = end
        elif name == "SET_FEED_RATE":
            feed = float(arguments[0])
        elif name == "SELECT_TOOL":  # the T word: the tool's number
            selected = int(float(arguments[0]))
        elif name == "CHANGE_TOOL":  # M6 names the tool's slot in the tool table, not its number
            canon.tools.append(selected if selected is not None else int(float(arguments[0])))
        elif name == "SET_SPINDLE_SPEED":
            canon.spindle_rpm.append(float(arguments[-1]))
    return canon


def interpreter_path() -> str | None:
    return shutil.which(os.environ.get("PARAMETRIC_RS274", INTERPRETER))


def run_rs274(program: str | os.PathLike[str], tool_table: str | os.PathLike[str] | None = None) -> Canon:
    """Interpret ``program`` with rs274 (GRBL ``$`` lines stripped) and return its canonical moves.

    Raises InterpreterError with rs274's message when it refuses the program or is missing.
    """
    binary = interpreter_path()
    name = Path(program).name
    if binary is None:
        raise InterpreterMissing(name, not_installed("rs274", "linuxcnc-uspace"))
    text = Path(program).read_text("utf-8")
    cleaned = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("$")) + "\n"
    with tempfile.TemporaryDirectory(prefix="rs274-") as folder:
        source = Path(folder) / "program.ngc"
        source.write_text(cleaned, "utf-8")
        table = Path(folder) / "tool.tbl"
        if tool_table is not None:
            shutil.copyfile(tool_table, table)
        else:
            table.write_text("", "utf-8")
        output = Path(folder) / "out.canon"
        limit = interpreter_timeout_s()
        try:
            completed = subprocess.run([binary, "-g", "-t", str(table), str(source), str(output)],
                                       stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=folder,
                                       timeout=limit)
        except subprocess.TimeoutExpired:  # run() has killed it
            raise InterpreterTimeout(name, overran("rs274", limit or 0)) from None
        if completed.returncode != 0:
            said = [line.strip() for line in (completed.stdout + "\n" + completed.stderr).splitlines()
                    if line.strip() and line.strip() != "executing"]
            raise InterpreterError(name, "; ".join(said[-3:]) or f"rs274 exited {completed.returncode}")
        return parse_canon(output.read_text("utf-8"))


def check_programs(programs: Iterable[str | os.PathLike[str]], tool_table: str | os.PathLike[str] | None = None
                   ) -> Canon:
    """Interpret several programs (a GRBL part's one-per-tool files) into one Canon, in order."""
    canon = Canon()
    for program in programs:
        canon.extend(run_rs274(program, tool_table))
    return canon


@dataclass(frozen=True)
class Tab:
    """A stretch of a through cut's final pass where the tool runs above the bottom, leaving material."""

    start: tuple[float, float]
    end: tuple[float, float]
    z: float

    @property
    def length(self) -> float:
        return math.dist(self.start, self.end)


def final_pass_tabs(canon: Canon, final_z: float, tolerance: float = 1e-3) -> list[Tab]:
    """The tabs of every through cut reaching ``final_z``: runs of horizontal cutting moves above it that
    start and end between horizontal moves at ``final_z`` (a retract ends a run without a tab)."""
    tabs: list[Tab] = []
    run: list[Move] = []
    after_final = False
    for move in canon.moves:
        if move.kind == "rapid":
            run, after_final = [], False
            continue
        horizontal = abs(move.start[2] - move.end[2]) < tolerance and math.dist(move.start[:2], move.end[:2]) > 1e-6
        if not horizontal:
            continue
        if abs(move.end[2] - final_z) < tolerance:
            if run and after_final:
                tabs.append(Tab(run[0].start[:2], run[-1].end[:2], run[0].end[2]))  # type: ignore[arg-type]
            run, after_final = [], True
        elif move.end[2] > final_z + tolerance and after_final:
            run.append(move)
    return tabs
