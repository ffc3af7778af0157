"""A post-processor: what one controller's G-code dialect supports, and the lines it writes differently.

The planner's toolpaths are machine-neutral; a post-processor turns them into one controller's
G-code, as FreeCAD CAM's ``grbl_post.py`` and ``linuxcnc_post.py`` do. The frame of a program
and its moves are written by the shared writer (:mod:`parametric.cnc.gcode`), which asks the
post-processor's declarations (one program per tool or tool changes, the file extension, a tool
table) instead of naming dialects; the post-processor writes the lines that differ (the modal
reset, loading a tool, the tool table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol


class Cutter(Protocol):
    """What a post-processor reads of a tool (``parametric.machines.Tool`` is one)."""

    @property
    def number(self) -> int: ...

    @property
    def diameter_mm(self) -> float: ...

    def describe(self) -> str: ...


def number(value: float) -> str:
    """A G-code number: at most three decimals, no trailing zeros, never ``-0``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def comment(text: str) -> str:
    """Text safe inside a G-code comment (no nested parentheses), kept short for GRBL's line buffer."""
    text = text.replace("(", "[").replace(")", "]").replace(";", ",").replace("Ø", "dia ").replace("²", "2")
    return text.encode("ascii", "replace").decode("ascii")[:70]


class PostProcessor:
    """One controller dialect. Subclasses declare what the controller supports and write its own lines."""

    name: ClassVar[str]
    """The dialect's name, as a router record spells it (``dialect = "grbl"``)."""
    label: ClassVar[str]
    """The controller's name as people write it (``GRBL``)."""
    extension: ClassVar[str]
    """The file extension of a program, without the dot."""
    tool_changes: ClassVar[bool] = False
    """Tools change inside a program (``T.. M6``); without it, each tool gets a program of its own."""
    tool_length_offsets: ClassVar[bool] = False
    """Tool length offsets from the tool table (``G43 H..``, cancelled by ``G49``)."""
    cutter_compensation: ClassVar[bool] = False
    """Cutter radius compensation (``G41``/``G42``, cancelled by ``G40``). The planner offsets every
    toolpath itself, so this is never used, only cancelled at the start where the controller has it."""
    canned_cycles: ClassVar[bool] = False
    """Drilling cycles (``G81``-``G89``, cancelled by ``G80``); unused for the same reason."""
    tool_table: ClassVar[str | None] = None
    """The tool table file the controller reads beside the programs (one per folder), if any."""

    @property
    def one_program_per_tool(self) -> bool:
        """Each tool's operations go in a program of their own (the operator changes the tool between them)."""
        return not self.tool_changes

    def capabilities(self) -> dict[str, Any]:
        """The declarations, as plain values (for records and forms)."""
        return {"name": self.name, "label": self.label, "extension": self.extension, "tool_changes": self.tool_changes,
                "tool_length_offsets": self.tool_length_offsets, "cutter_compensation": self.cutter_compensation,
                "canned_cycles": self.canned_cycles, "one_program_per_tool": self.one_program_per_tool,
                "tool_table": self.tool_table}

    def modal_reset(self) -> str:
        """The line that puts the controller into a known state: mm, absolute, XY plane, feed per minute,
        and every mode it has that a program before this one could have left on cancelled."""
        words = ["G21", "G90", "G17", "G94"]
        if self.cutter_compensation:
            words.append("G40")
        if self.tool_length_offsets:
            words.append("G49")
        if self.canned_cycles:
            words.append("G80")
        return " ".join(words)

    def load_tool(self, tool: Cutter, safe_z: float) -> list[str]:
        """The lines that make ``tool`` the one cutting, ending at ``safe_z`` (mm) above the sheet."""
        raise NotImplementedError

    def tool_table_text(self, tools: Sequence[Cutter]) -> str:
        """The tool table listing ``tools``, for a controller that declares one."""
        raise NotImplementedError(f"{self.name} reads no tool table")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
