"""Sheet thickness as measured: a router whose 18 mm plywood measures 17.6 mm cuts a bookcase's dados 17.6 mm plus
the fit allowance wide, read back from the G-code through LinuxCNC's rs274; the order keeps its 18 mm."""

from __future__ import annotations

import pytest

from parametric.cnc import check_programs
from parametric.joinery import FIT_ALLOWANCE_MM
from parametric.machines import machine_from_dict
from parametric.production import SheetRequest, produce
from parametric.registry import get_template

from ...conftest import require_module

shapely = require_module("shapely")

from shapely.geometry import LineString, Point, box  # noqa: E402
from shapely.ops import unary_union  # noqa: E402

BOOKCASE = {"height": 900, "width": 600, "depth": 250, "shelf_count": 2, "back_panel": False}


def swept(canon, z: float, radius: float):
    """The area the cutter sweeps while cutting at height ``z``."""
    shapes = []
    for move in canon.cutting:
        points = [p[:2] for p in move.points() if abs(p[2] - z) < 1e-6]
        if len(points) >= 2 and abs(move.start[2] - z) < 1e-6 and abs(move.end[2] - z) < 1e-6:
            shapes.append(LineString(points).buffer(radius, quad_segs=16))
        elif points:
            shapes.append(Point(points[-1]).buffer(radius, quad_segs=16))
    return unary_union(shapes)


def dado_widths(made, folder) -> list[float]:
    """Width of each shelf dado as the side's G-code cuts it, across the middle of the side."""
    params = get_template("bookcase").resolve(made.manifest.params)
    side = next(result for result in made.cam if result.part == "side")
    pocket = next(op for op in side.operations if op.kind == "pocket")
    canon = check_programs([folder / "cnc" / program.filename for program in side.programs], side.tool_table)
    cut = swept(canon, -params.dado_depth, pocket.tool.radius_mm)
    x0, y0 = side.offset_mm
    widths = []
    for shelf in params.shelf_positions():
        band = box(x0 + shelf - 10, y0 + params.depth / 2 - 10, x0 + shelf + params.thickness + 10,
                   y0 + params.depth / 2 + 10)
        lo, _, hi, _ = cut.intersection(band).bounds
        widths.append(hi - lo)
    return widths


@pytest.mark.integration
def test_dados_are_cut_to_the_measured_sheet_plus_the_allowance(rs274, tmp_path, make_router):
    record = make_router()
    for sheet in record["stock"]:
        if sheet["material"] == "birch_plywood" and sheet["thickness_mm"] == 18:
            sheet["measured_thickness_mm"] = 17.6
    made = produce("bookcase", BOOKCASE, machine_from_dict(record), tmp_path / "measured", material="birch_plywood",
                   verify=True, sheet=SheetRequest(order_ref=None, item_ref="1", job_url=None, pdf=False))
    assert dado_widths(made, tmp_path / "measured") == pytest.approx([17.6 + FIT_ALLOWANCE_MM] * 2, abs=1e-3)
    cam = made.manifest.extra["cam"]
    assert cam["fit"] == {"allowance_mm": FIT_ALLOWANCE_MM, "measured_mm": {"18": 17.6}, "rebuilt": True}
    # The order is as it was: 18 mm sheet, the same size, the same parameters.
    assert made.manifest.params["sheet_thickness"] == 18
    assert {part["name"]: part["thickness_mm"] for part in made.manifest.parts} == {
        "side": 18, "top": 18, "bottom": 18, "shelf": 18}
    assert all(part["thickness_mm"] == 18 for part in cam["parts"])
    # The bench reads what the joints were cut to.
    assert "18 mm sheet measures 17.6 mm" in made.sheet.html.read_text("utf-8")

    # The same order on a router that has no measurement cuts them to the nominal 18 mm plus the allowance.
    plain = produce("bookcase", BOOKCASE, machine_from_dict(make_router()), tmp_path / "nominal",
                    material="birch_plywood", verify=True)
    assert dado_widths(plain, tmp_path / "nominal") == pytest.approx([18 + FIT_ALLOWANCE_MM] * 2, abs=1e-3)
    assert plain.manifest.extra["cam"]["fit"]["rebuilt"] is False


def test_an_order_of_an_older_version_keeps_its_rendered_joints(tmp_path, make_router):
    """The measured sheet cannot be applied to a product made with another version of its template: rebuilding
    would change more than the joints. It is cut as rendered, and the record says so."""
    from dataclasses import replace

    from parametric import render
    from parametric.production import make

    record = make_router()
    for sheet in record["stock"]:
        sheet["measured_thickness_mm"] = sheet["thickness_mm"] - 0.4
    manifest = render("bookcase", BOOKCASE, out_dir=tmp_path / "render", formats=["step", "dxf"],
                      material="birch_plywood")
    made = make(replace(manifest, version="1.0.0"), machine_from_dict(record), tmp_path / "old",
                material="birch_plywood")
    fit = made.manifest.extra["cam"]["fit"]
    assert fit["rebuilt"] is False and "bookcase 1.0.0" in fit["kept_nominal"]
    side = next(result for result in made.cam if result.part == "side")
    shelf_dado = min((piece for pocket in side.features.pockets for piece in getattr(pocket.region, "geoms",
                                                                                   [pocket.region])),
                     key=lambda piece: abs(piece.bounds[0] - 300))
    x0, _, x1, _ = shelf_dado.bounds
    assert x1 - x0 == pytest.approx(18 + FIT_ALLOWANCE_MM, abs=1e-3)
