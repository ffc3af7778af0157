"""CNC: flat sheet parts made on a router, from the B-rep to DXF and G-code, checked by LinuxCNC's rs274.

- :mod:`.features` — what a flat part asks of a router, read from its B-rep (outline, openings,
  holes, pockets, bores, notes for what one setup cannot make);
- :mod:`.planner` — operations with tools from the router's library, and machine-neutral toolpaths
  (offsets, pocket clearing, dogbones, passes, tabs);
- :mod:`.post` — one post-processor per controller dialect (GRBL, LinuxCNC) behind one table, each
  declaring what its controller supports;
- :mod:`.gcode` — the writer the post-processors share: programs, modal moves, time estimate;
- :mod:`.dxf` — 1:1 mm DXF, one layer per operation or per feature kind;
- :mod:`.cam` — whole parts and rendered manifests (the entry points), and what the manifest records;
- :mod:`.verify` — LinuxCNC's ``rs274`` run on the programs, and their canonical moves.

Importing this package loads no CAD kernel or geometry library: those are imported where used.
"""

from .cam import CamResult, cam_manifest, cam_part, cam_record, job_tool_table
from .dxf import LAYER_COLOURS, feature_dxf, write_dxf
from .features import CamError, Hole, PartFeatures, Pocket, circle_of, extract_features, load_step
from .gcode import Program, write_gcode, write_tool_table
from .planner import CamSettings, Operation, Toolpath, pass_depths, plan
from .post import POST_PROCESSORS, PostProcessor, post_processor
from .verify import (
    Canon,
    InterpreterError,
    Move,
    Tab,
    check_programs,
    final_pass_tabs,
    interpreter_path,
    parse_canon,
    run_rs274,
)

__all__ = [
    "LAYER_COLOURS", "POST_PROCESSORS",
    "Canon", "CamError", "CamResult", "CamSettings", "Hole", "InterpreterError", "Move", "Operation", "PartFeatures",
    "Pocket", "PostProcessor", "Program", "Tab", "Toolpath",
    "cam_manifest", "cam_part", "cam_record", "check_programs", "circle_of", "extract_features", "feature_dxf",
    "final_pass_tabs", "interpreter_path", "job_tool_table", "load_step", "parse_canon", "pass_depths", "plan",
    "post_processor", "run_rs274", "write_dxf", "write_gcode", "write_tool_table",
]
