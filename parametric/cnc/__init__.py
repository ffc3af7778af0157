"""CNC: flat sheet parts made on a router, from the B-rep to DXF and G-code, checked by LinuxCNC's rs274.

- :mod:`.planner` — features, operations and toolpaths, G-code, DXF and whole parts;
- :mod:`.verify` — LinuxCNC's ``rs274`` run on the programs, and their canonical moves;
- :mod:`.delivery` — G-code into a router's hot folder (until ``parametric.hosts`` takes it over).

Importing this package loads no CAD kernel or geometry library: those are imported where used.
"""

from .planner import (
    CamError,
    CamResult,
    CamSettings,
    Hole,
    Operation,
    PartFeatures,
    Pocket,
    Program,
    Toolpath,
    cam_manifest,
    cam_part,
    cam_record,
    circle_of,
    extract_features,
    feature_dxf,
    load_step,
    pass_depths,
    plan,
    tool_table,
    write_dxf,
    write_gcode,
)
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
    "Canon", "CamError", "CamResult", "CamSettings", "Hole", "InterpreterError", "Move", "Operation", "PartFeatures",
    "Pocket", "Program", "Tab", "Toolpath",
    "cam_manifest", "cam_part", "cam_record", "check_programs", "circle_of", "extract_features", "feature_dxf",
    "final_pass_tabs", "interpreter_path", "load_step", "parse_canon", "pass_depths", "plan", "run_rs274",
    "tool_table", "write_dxf", "write_gcode",
]
