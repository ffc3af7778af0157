"""GRBL 1.1: no tool changes (one program per tool), no tool length offsets, no cutter compensation and no
canned cycles, so every toolpath comes already offset by the tool radius; ``.nc`` files, no tool table."""

from __future__ import annotations

from typing import ClassVar

from .base import Cutter, PostProcessor, comment


class GrblPost(PostProcessor):
    name: ClassVar[str] = "grbl"
    label: ClassVar[str] = "GRBL"
    extension: ClassVar[str] = "nc"

    def load_tool(self, tool: Cutter, safe_z: float) -> list[str]:
        # No M6: the operator loads the tool the program's header names before starting it.
        return [f"({comment(tool.describe())})"]
