"""LinuxCNC: tool changes (``T.. M6``) and tool length offsets (``G43 H..``) in one ``.ngc`` program per part,
with a tool table (``tool.tbl``) beside the programs; it also has cutter compensation and canned cycles,
which are cancelled at the start of each program."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from .base import Cutter, PostProcessor, comment, number


class LinuxCNCPost(PostProcessor):
    name: ClassVar[str] = "linuxcnc"
    label: ClassVar[str] = "LinuxCNC"
    extension: ClassVar[str] = "ngc"
    tool_changes: ClassVar[bool] = True
    tool_length_offsets: ClassVar[bool] = True
    cutter_compensation: ClassVar[bool] = True
    canned_cycles: ClassVar[bool] = True
    tool_table: ClassVar[str | None] = "tool.tbl"

    def load_tool(self, tool: Cutter, safe_z: float) -> list[str]:
        return [f"T{tool.number} M6 ({comment(tool.describe())})", f"G43 H{tool.number}", f"G0 Z{number(safe_z)}"]

    def tool_table_text(self, tools: Sequence[Cutter]) -> str:
        """Pocket = tool number, the diameter (what cutter compensation would read) and no length offset."""
        return "".join(f"T{t.number} P{t.number} D{t.diameter_mm:.4f} Z+0.000 ;{comment(t.describe())}\n"
                       for t in sorted(tools, key=lambda t: t.number))
