"""G-code programs from the planner's operations: the writer every post-processor shares.

:func:`write_gcode` groups a part's operations into programs, writes each program's frame
(header comments, modal reset, spindle, end) and its moves with modal feeds, and estimates
the time they take. What differs between controllers it asks the router's post-processor
(:mod:`parametric.cnc.post`): one program per tool or tool changes, the file extension, the
modal reset line, how a tool is loaded, and whether a tool table goes beside the programs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write
from ..machines import Feeds, Router, Tool
from .planner import CamSettings, Operation, Point3
from .post import PostProcessor, post_processor
from .post.base import comment, number


@dataclass
class Program:
    """One G-code file: its tools, operations, text and estimated run time (seconds)."""

    filename: str
    tools: list[Tool]
    operations: list[Operation]
    text: str = ""
    time_s: float = 0.0
    cut_length_mm: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.filename, "tools": [t.number for t in self.tools],
                "operations": [op.layer for op in self.operations], "time_s": round(self.time_s, 1),
                "cut_length_mm": round(self.cut_length_mm, 1)}


class _Writer:
    """G-code lines with modal feed, and the time they take."""

    def __init__(self, rapid_mm_min: float):
        self.lines: list[str] = []
        self.position: list[float | None] = [None, None, None]
        self.feed: float | None = None
        self.rapid_mm_min = rapid_mm_min
        self.seconds = 0.0
        self.cut_length = 0.0

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def move(self, kind: str, point: Point3, offset: tuple[float, float], feeds: Feeds) -> None:
        target = (point[0] + offset[0], point[1] + offset[1], point[2])
        words = []
        for axis, old, new in zip("XYZ", self.position, target, strict=True):
            if old is None or abs(old - new) > 5e-4:
                words.append(f"{axis}{number(new)}")
        if not words:
            return
        distance = math.dist([p if p is not None else t for p, t in zip(self.position, target, strict=True)], target) \
            if None not in self.position else 0.0
        if kind == "rapid":
            self.emit("G0 " + " ".join(words))
            self.seconds += distance / self.rapid_mm_min * 60
        else:
            feed = feeds.plunge_mm_min if kind == "plunge" else feeds.feed_mm_min
            if self.feed != feed:
                words.append(f"F{number(feed)}")
                self.feed = feed
            self.emit("G1 " + " ".join(words))
            self.seconds += distance / feed * 60
            self.cut_length += distance
        self.position = list(target)


def _batches(operations: Sequence[Operation], post: PostProcessor) -> list[list[Operation]]:
    """The operations of each program: one program per run of one tool, or all in one with tool changes."""
    groups: list[list[Operation]] = []
    for operation in operations:
        if groups and groups[-1][0].tool.number == operation.tool.number:
            groups[-1].append(operation)
        else:
            groups.append([operation])
    if post.one_program_per_tool:
        return groups
    return [[op for group in groups for op in group]]


def write_gcode(operations: Sequence[Operation], router: Router, out_dir: str | Path, part: str, *,
                material: str, thickness: float, settings: CamSettings | None = None,
                header: Sequence[str] = (), offset_mm: tuple[float, float] | None = None,
                origin: str | None = None) -> list[Program]:
    """G-code for the operations in the router's dialect, written atomically into ``out_dir``.

    A dialect without tool changes (GRBL) gets one file per tool, ``<part>.<ext>`` when one tool
    does everything; one with tool changes (LinuxCNC) gets one ``<part>.<ext>`` changing tools.
    The tool table a dialect reads is not written here: there is one per folder, listing the tools
    of every program in it (:func:`write_tool_table`). Coordinates: X0 Y0 at the sheet's lower-left
    corner with the part ``margin_mm`` in from it; Z0 at the top of the sheet. A nested sheet's
    operations are in sheet coordinates already: ``offset_mm=(0, 0)``, with ``origin`` saying so.
    """
    settings = settings or CamSettings()
    post = post_processor(router.dialect)
    out_dir = Path(out_dir)
    offset = offset_mm if offset_mm is not None else (settings.margin_mm, settings.margin_mm)
    origin = origin or f"X0 Y0 = sheet lower-left corner, part {number(settings.margin_mm)} mm in; Z0 = sheet top"
    batches = _batches(operations, post)
    programs = []
    for index, batch in enumerate(batches):
        tools = list({op.tool.number: op.tool for op in batch}.values())
        if len(batches) == 1:
            filename = f"{part}.{post.extension}"
        else:
            filename = f"{part}-{index + 1}-T{tools[0].number}.{post.extension}"
        writer = _Writer(router.rapid_mm_min)
        writer.emit(f"(parametric CAM: {part}, {material} {number(thickness)} mm, {router.name} {post.name})")
        for line in header:
            writer.emit(f"({comment(line)})")
        writer.emit(f"({comment(origin)})")
        if len(batches) > 1:
            writer.emit(f"(program {index + 1} of {len(batches)}: load {comment(tools[0].describe())})")
        writer.emit(post.modal_reset())
        writer.emit(f"G0 Z{number(router.safe_height_mm)}")
        writer.position[2] = router.safe_height_mm
        current_tool = None
        for operation in batch:
            tool, feeds = operation.tool, operation.feeds
            if tool.number != current_tool:
                if current_tool is not None:
                    writer.emit("M5")
                for line in post.load_tool(tool, router.safe_height_mm):
                    writer.emit(line)
                if post.tool_changes and current_tool is not None:
                    writer.seconds += settings.tool_change_s
                writer.emit(f"M3 S{number(feeds.spindle_rpm)}")
                writer.emit(f"G4 P{number(settings.spindle_dwell_s)}")
                writer.seconds += settings.spindle_dwell_s
                current_tool = tool.number
            elif feeds.spindle_rpm:
                writer.emit(f"S{number(feeds.spindle_rpm)}")
            writer.emit(f"({comment(operation.layer)}: {comment(operation.description)})")
            for kind, point in operation.path.moves:
                writer.move(kind, point, offset, feeds)
        writer.emit(f"G0 Z{number(router.safe_height_mm)}")
        writer.emit("M5")
        writer.emit("G0 X0 Y0")
        writer.emit("M30")
        text = "\n".join(writer.lines) + "\n"
        atomic_write(out_dir / filename, text)
        programs.append(Program(filename, tools, list(batch), text, writer.seconds, writer.cut_length))
    return programs


def write_tool_table(programs: Sequence[Program], router: Router, out_dir: str | Path) -> Path | None:
    """The tool table the router's controller reads beside its programs, written atomically into ``out_dir``
    and listing every tool any of ``programs`` loads (all the programs of a job, not one part's: the
    controller reads one table for the folder); None for a dialect that reads no tool table."""
    post = post_processor(router.dialect)
    if not post.tool_table:
        return None
    tools = {tool.number: tool for program in programs for tool in program.tools}
    target = Path(out_dir) / post.tool_table
    atomic_write(target, post.tool_table_text(list(tools.values())))
    return target
