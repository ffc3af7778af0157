"""Post-processors, one per controller dialect, behind one table: a new controller is one module and one entry.

Each takes the planner's machine-neutral toolpaths through the shared writer
(:func:`parametric.cnc.gcode.write_gcode`) and declares what its controller supports.
"""

from __future__ import annotations

from .base import Cutter, PostProcessor
from .grbl import GrblPost
from .linuxcnc import LinuxCNCPost

POST_PROCESSORS: dict[str, PostProcessor] = {post.name: post for post in (GrblPost(), LinuxCNCPost())}
"""The dialects a router can speak (``Router.dialect``), by name."""


def post_processor(dialect: str) -> PostProcessor:
    """The post-processor of a dialect; a router record is validated against :data:`POST_PROCESSORS`."""
    try:
        return POST_PROCESSORS[dialect]
    except KeyError:
        raise ValueError(f"no post-processor for G-code dialect {dialect!r}; known: "
                         f"{', '.join(POST_PROCESSORS)}") from None


__all__ = ["POST_PROCESSORS", "Cutter", "GrblPost", "LinuxCNCPost", "PostProcessor", "post_processor"]
