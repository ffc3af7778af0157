"""Whole parts: a flat part's B-rep, or every CNC part of a rendered manifest, to DXF and G-code on one router.

:func:`cam_part` reads the features (:mod:`.features`), plans the operations (:mod:`.planner`),
draws the DXF (:mod:`.dxf`) and writes the programs through the router's post-processor
(:mod:`.gcode`, :mod:`.post`); :func:`cam_manifest` does it for every CNC part of a render and
:func:`cam_record` says what the manifest records of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Router
from .dxf import write_dxf
from .features import PartFeatures, extract_features, load_step
from .gcode import Program, write_gcode, write_tool_table
from .planner import CamSettings, Operation, plan


@dataclass
class CamResult:
    """What CAM made for one part: its features, operations, DXF, G-code programs and machining time."""

    part: str
    copies: int
    features: PartFeatures
    operations: list[Operation]
    programs: list[Program]
    dxf: Path
    tool_table: Path | None
    """The controller's tool table beside the programs (one for every part of the job), if it reads one."""
    quarter_turn: bool
    offset_mm: tuple[float, float]
    tool_change_s: float = 60.0
    timings: dict[str, float] = field(default_factory=dict)
    verified_moves: int | None = None
    """Canonical moves rs274 made of the programs, when they were checked."""

    @property
    def time_s(self) -> float:
        """Machining time of one copy, tool changes between GRBL programs included."""
        return sum(p.time_s for p in self.programs) + max(0, len(self.programs) - 1) * self.tool_change_s

    def checklist(self) -> list[str]:
        """The operations in order, then what this setup leaves to do, for the job sheet."""
        lines = [f"{op.tool.describe()}: {op.description} ({op.layer}"
                 + (f", {op.passes} passes" if op.passes > 1 else "")
                 + (f", {op.dogbones} dogbones" if op.dogbones else "")
                 + (f", {op.tabs} tabs" if op.tabs else "") + ")" for op in self.operations]
        if any(op.tabs for op in self.operations):
            lines.append("cut the tabs and sand them flush")
        return lines + self.features.notes + [f"second setup: {s.operation} ({s.tool})"
                                              for s in self.features.second_setups]

    def to_dict(self) -> dict[str, Any]:
        width, height = self.features.size
        return {"part": self.part, "copies": self.copies, "size_mm": [round(width, 3), round(height, 3)],
                "thickness_mm": self.features.thickness, "quarter_turn": self.quarter_turn,
                "offset_mm": list(self.offset_mm), "dxf": self.dxf.name,
                "tool_table": self.tool_table.name if self.tool_table else None,
                "programs": [p.to_dict() for p in self.programs],
                "operations": [op.to_dict() for op in self.operations], "notes": self.features.notes,
                "second_setups": [s.to_dict() for s in self.features.second_setups],
                "checklist": self.checklist(), "time_s": round(self.time_s, 1),
                "holes": len(self.features.holes), "pockets": len(self.features.pockets),
                "cutouts": len(self.features.cutouts), "verified_moves": self.verified_moves,
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


def cam_part(shape: Any, name: str, router: Router, material: str, out_dir: str | Path, *,
             thickness: float | None = None, copies: int = 1, quarter_turn: bool = False,
             settings: CamSettings | None = None, header: Sequence[str] = (), tool_table: bool = True,
             features: PartFeatures | None = None) -> CamResult:
    """Features, operations, DXF and G-code for one flat part's B-rep ``shape`` on ``router``.

    With ``tool_table`` the controller's tool table for this part's programs is written beside them; a
    job of several parts in one folder writes one table for all of them instead (:func:`cam_manifest`).
    ``features`` are the shape's, when they were read already.
    """
    settings = settings or CamSettings()
    started = time.perf_counter()
    features = features if features is not None else extract_features(shape, name, thickness)
    if quarter_turn:
        features = features.turned()
    extracted = time.perf_counter()
    operations = plan(features, router, material, settings)
    planned = time.perf_counter()
    out_dir = Path(out_dir)
    dxf = write_dxf(features, operations, out_dir / f"{name}.dxf")
    programs = write_gcode(operations, router, out_dir, name, material=material, thickness=features.thickness,
                           settings=settings, header=header)
    written = time.perf_counter()
    result = CamResult(name, copies, features, operations, programs, dxf, None, quarter_turn,
                       (settings.margin_mm, settings.margin_mm), settings.tool_change_s,
                       {"features_s": extracted - started, "toolpaths_s": planned - extracted,
                        "write_s": written - planned})
    if tool_table:
        job_tool_table([result], router, out_dir)
    return result


def job_tool_table(results: Sequence[CamResult], router: Router, out_dir: str | Path) -> Path | None:
    """Write the one tool table of a job's programs (every part's, all in ``out_dir``) and point each
    result at it; None for a dialect that reads no tool table."""
    table = write_tool_table([program for result in results for program in result.programs], router, out_dir)
    for result in results:
        result.tool_table = table
    return table


def cam_manifest(manifest: Any, router: Router, material: str, out_dir: str | Path, *, quantity: int = 1,
                 settings: CamSettings | None = None, process: str | None = None,
                 shapes: Mapping[str, Any] | None = None) -> list[CamResult]:
    """CAM for every CNC part of a rendered manifest (rendered with STEP files) on ``router``, into
    ``out_dir``, with one tool table there for all the parts' programs.

    ``shapes`` gives a part's B-rep by name instead of its STEP file: the parts rebuilt with their housings
    fitted to the router's measured sheets (:func:`parametric.production.make`)."""
    from ..routing import route
    from .capability import features_check

    settings = settings or CamSettings()
    parts = [part for part in manifest.parts if (part.get("process") or process) == "cnc"]
    refused = [FieldError("machine", f"{v.part}: {v.reason}")
               for v in (route(part, material, [router], process=process) for part in parts) if not v.ok]
    if refused:  # the stock, the sheet or the outline cutter: nothing to read the parts for
        raise ValidationError(refused)
    features = {}
    for part in parts:
        if shapes is not None and part["name"] in shapes:
            shape = shapes[part["name"]]
        else:
            record = next(r for r in manifest.files if r["format"] == "step" and r["part"] == part["name"])
            shape = load_step(manifest.directory / record["filename"])
        features[part["name"]] = extract_features(shape, part["name"], part.get("thickness_mm"))
    # routing's own check over the features about to be cut: a router that cannot make a part is refused
    # here with the reason routing and quotes give, before anything is written
    can_cut = features_check(features, settings=settings)
    verdicts = [route(part, material, [router], process=process, can_cut=can_cut) for part in parts]
    refused = [FieldError("machine", f"{v.part}: {v.reason}") for v in verdicts if not v.ok]
    if refused:
        raise ValidationError(refused)
    results = []
    for part, verdict in zip(parts, verdicts, strict=True):
        header = [f"{manifest.template} {manifest.version}, part {part['name']} x{part['quantity'] * quantity}"]
        results.append(cam_part(None, part["name"], router, material, out_dir, thickness=part.get("thickness_mm"),
                                copies=part["quantity"] * quantity, quarter_turn=verdict.quarter_turn,
                                settings=settings, header=header, tool_table=False,
                                features=features[part["name"]]))
    job_tool_table(results, router, out_dir)
    return results


def cam_record(results: Sequence[CamResult], router: Router, material: str, quantity: int,
               settings: CamSettings) -> dict[str, Any]:
    """What a manifest (and a job) records of CAM: machine, material, settings, parts, total machining time."""
    from ..machines import public_record

    return {"machine": public_record(router), "material": material, "quantity": quantity,
            "settings": settings.as_dict(), "parts": [r.to_dict() for r in results],
            "machining_time_s": round(sum(r.time_s * r.copies for r in results), 1)}
