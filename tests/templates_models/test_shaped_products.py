"""The shaped CNC products (flat-pack stool, coat rack): the parts fit together, measured on the built geometry
and on the outlines CAM reads; the outlines are true shapes, not rectangles; every preset's CNC programs pass
LinuxCNC's rs274 on the shop's router."""

from __future__ import annotations

import itertools

import pytest

import parametric
from parametric import ValidationError
from parametric.joinery import FIT_ALLOWANCE_MM, SheetFit
from parametric.part import solid_of

from ..conftest import require_module

cq = require_module("cadquery")
shapely = require_module("shapely")

from shapely.geometry import LineString, box  # noqa: E402

from parametric.cnc import extract_features  # noqa: E402
from parametric.cnc.features import polygons  # noqa: E402

SHAPED = ("flatpack_stool", "coat_rack")


def built(template_id: str, values: dict | None = None, preset: str | None = None, fit: SheetFit | None = None):
    template = parametric.get_template(template_id)
    params = template.resolve(values or {}, preset)
    if fit is not None:
        params = params.fitted(fit)
    return params, {part.name: part for part in template.build(params)}


def placed(parts) -> list[tuple[str, object]]:
    return [(name, solid_of(part.shape).moved(location)) for name, part in parts.items()
            for location in part.placements]


def gaps_across(outline, y: float) -> list[tuple[float, float]]:
    """(start, end) along x of the gaps in ``outline`` on the horizontal line at ``y``, inside its extent."""
    x0, _, x1, _ = outline.bounds
    inside = outline.intersection(LineString([(x0 - 1, y), (x1 + 1, y)]))
    pieces = sorted((g.bounds[0], g.bounds[2]) for g in getattr(inside, "geoms", [inside]))
    return [(a[1], b[0]) for a, b in itertools.pairwise(pieces)]


# -- stool -----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [None, *parametric.get_template("flatpack_stool").presets])
def test_stool_halving_slots_are_the_sheet_plus_the_allowance_to_the_middle(preset):
    params, parts = built("flatpack_stool", preset=preset)
    t, height = params.thickness, params.leg_height
    width = t + FIT_ALLOWANCE_MM
    leg_a = extract_features(solid_of(parts["leg_a"].shape), "leg_a", t).outline
    leg_b = extract_features(solid_of(parts["leg_b"].shape), "leg_b", t).outline
    middle = (leg_a.bounds[0] + leg_a.bounds[2]) / 2  # CAM's outline starts at x = 0 (the rounded feet)
    # Leg A is open from its top edge down to just below the middle, leg B from the floor (or the arch) up.
    for outline, ys, not_ys in ((leg_a, (height * 0.55, height * 0.95), (height * 0.45,)),
                                (leg_b, (height * 0.45,), (height * 0.55, height * 0.95))):
        for y in ys:
            (gap,) = [g for g in gaps_across(outline, y) if g[0] < middle < g[1]]
            assert gap[1] - gap[0] == pytest.approx(width, abs=1e-3)
            assert (gap[0] + gap[1]) / 2 == pytest.approx(middle, abs=1e-3)
        for y in not_ys:
            assert not [g for g in gaps_across(outline, y) if g[0] < middle < g[1]], y
    # Each slot runs to half a leg height plus its run past the middle.
    slot_a = box(middle - width / 2 + 0.01, 0, middle + width / 2 - 0.01, height)
    from_top = [p for p in polygons(slot_a.difference(leg_a)) if p.bounds[3] == pytest.approx(height)]
    from_floor = [p for p in polygons(slot_a.difference(leg_b)) if p.bounds[1] == pytest.approx(0)]
    assert height - from_top[0].bounds[1] == pytest.approx(height / 2 + 0.5, abs=1e-3)
    assert from_floor[0].bounds[3] == pytest.approx(height / 2 + 0.5, abs=1e-3)


@pytest.mark.parametrize("preset", [None, *parametric.get_template("flatpack_stool").presets])
def test_stool_parts_fit_together_without_overlap(preset):
    params, parts = built("flatpack_stool", preset=preset)
    shapes = dict(placed(parts))
    for (a, shape_a), (b, shape_b) in itertools.combinations(shapes.items(), 2):
        assert shape_a.intersect(shape_b).Volume() == pytest.approx(0, abs=1e-3), f"{a} overlaps {b}"
    # The legs pass through each other's slots with half the allowance either side.
    assert shapes["leg_a"].distance(shapes["leg_b"]) == pytest.approx(FIT_ALLOWANCE_MM / 2, abs=1e-4)
    # The leg tops bear on the floor of the seat's housing; the stool stands on the floor at its height.
    for leg in ("leg_a", "leg_b"):
        assert shapes[leg].distance(shapes["seat"]) == pytest.approx(0, abs=1e-6)
    everything = cq.Compound.makeCompound(list(shapes.values())).BoundingBox()
    assert (everything.zmin, everything.zmax) == pytest.approx((0, params.height), abs=1e-6)


@pytest.mark.parametrize("preset", ["kitchen-stool", "kids-stool"])
def test_stool_housing_takes_both_leg_tops(preset):
    params, parts = built("flatpack_stool", preset=preset)
    features = extract_features(solid_of(parts["seat"].shape), "seat", params.thickness)
    (pocket,) = features.pockets
    assert pocket.depth == pytest.approx(params.housing_depth, abs=1e-3)
    x0, y0, x1, y1 = pocket.region.bounds
    assert (x1 - x0, y1 - y0) == (pytest.approx(params.housing_length, abs=1e-3),) * 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Each arm is as wide as the leg's sheet plus the allowance ...
    for line in (LineString([(cx - 1000, y0 + 5), (cx + 1000, y0 + 5)]),
                 LineString([(x0 + 5, cy - 1000), (x0 + 5, cy + 1000)])):
        crossing = pocket.region.intersection(line)
        assert crossing.length == pytest.approx(params.thickness + FIT_ALLOWANCE_MM, abs=1e-3)
    # ... and as long as a leg is wide where it enters the seat.
    leg = extract_features(solid_of(parts["leg_a"].shape), "leg_a", params.thickness).outline
    y = params.leg_height - params.housing_depth
    inside = leg.intersection(LineString([(-1, y), (params.foot_span + 1, y)]))
    assert inside.bounds[2] - inside.bounds[0] <= params.housing_length


def test_stool_rules_say_why():
    template = parametric.get_template("flatpack_stool")
    cases = {
        "foot_span": ({"height": 700, "foot_span": 300}, "tip"),
        "top_width": ({"top_width": 400, "foot_span": 360}, "tips over"),
        "housing_depth": ({"sheet_thickness": 15, "housing_depth": 8}, "half"),
        "arch_height": ({"arch_height": 200}, "half circle"),
        "hand_hole": ({"seat_size": 260, "top_width": 180, "hand_hole": True}, "hand hole"),
    }
    for field, (values, words) in cases.items():
        with pytest.raises(ValidationError) as caught:
            template.validate(values)
        problems = [(error.field, error.message) for error in caught.value.errors]
        assert any(name == field and words in message for name, message in problems), (field, problems)


# -- coat rack -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [None, *parametric.get_template("coat_rack").presets])
def test_coat_rack_tenons_fit_the_mortises(preset):
    params, parts = built("coat_rack", preset=preset)
    t = params.thickness
    board = extract_features(solid_of(parts["board"].shape), "board", t)
    assert len(board.cutouts) == params.hook_count
    assert len(board.holes) == len(params.screw_positions())
    for cutout, x in zip(sorted(board.cutouts, key=lambda c: c.bounds[0]), params.hook_positions(), strict=True):
        x0, y0, x1, y1 = cutout.bounds
        assert x1 - x0 == pytest.approx(t + FIT_ALLOWANCE_MM, abs=1e-3)  # the hook's sheet plus the allowance
        assert y1 - y0 == pytest.approx(params.tenon_height + FIT_ALLOWANCE_MM, abs=1e-3)
        assert cutout.area == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-6)  # square corners for the tenon
        assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((x, params.mortise_y), abs=1e-3)
    hook = extract_features(solid_of(parts["hook"].shape), "hook", t).outline
    # The tenon: as long as the board is thick less the gap at the wall, as high as the mortise less its allowance.
    tenon = hook.intersection(box(-1, -1, t - 1.0 - 0.01, 1000))
    x0, y0, x1, y1 = tenon.bounds
    assert x1 - x0 == pytest.approx(t - 1.0 - 0.01, abs=1e-3)
    assert y1 - y0 == pytest.approx(params.tenon_height, abs=1e-3)


@pytest.mark.parametrize("preset", [None, "entry-wall"])
def test_coat_rack_hooks_seat_on_the_board_without_overlap(preset):
    params, parts = built("coat_rack", preset=preset)
    shapes = placed(parts)
    board = next(shape for name, shape in shapes if name == "board")
    hooks = [shape for name, shape in shapes if name == "hook"]
    assert len(hooks) == params.hook_count
    for hook in hooks:
        assert hook.intersect(board).Volume() == pytest.approx(0, abs=1e-3)
        assert hook.distance(board) == pytest.approx(0, abs=1e-6)  # the shoulders bear on the board's face
        box_ = hook.BoundingBox()
        assert box_.ymin == pytest.approx(-params.thickness - params.hook_reach, abs=0.05)
        assert box_.ymax == pytest.approx(-1.0, abs=1e-6)  # the tenon stops 1 mm short of the wall
    for a, b in itertools.pairwise(sorted(hooks, key=lambda hook: hook.BoundingBox().xmin)):
        assert a.distance(b) == pytest.approx(params.pitch - params.thickness, abs=1e-3)


def test_coat_rack_rules_say_why():
    template = parametric.get_template("coat_rack")
    cases = {
        "hook_count": ({"width": 400, "hook_count": 6}, "apart"),
        "board_height": ({"board_height": 90, "hook_arm_width": 50, "hook_reach": 120}, "tenon"),
        "hook_arm_width": ({"hook_arm_width": 50, "hook_reach": 60}, "loop"),
        "arch_rise": ({"width": 300, "top_edge": "arched", "arch_rise": 60}, "hump"),
    }
    for field, (values, words) in cases.items():
        with pytest.raises(ValidationError) as caught:
            template.validate(values)
        problems = [(error.field, error.message) for error in caught.value.errors]
        assert any(name == field and words in message for name, message in problems), (field, problems)


# -- both ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template_id", SHAPED)
def test_measured_sheet_narrows_every_housing_and_keeps_the_order(template_id):
    """On a router whose 18 mm sheet measures 17.6 mm the slots and mortises are 17.6 mm plus the allowance;
    the parts' nominal thickness, outline and the assembly stay as ordered."""
    fit = SheetFit({18.0: 17.6})
    nominal, nominal_parts = built(template_id)
    measured, measured_parts = built(template_id, fit=fit)
    assert nominal.canonical() == measured.canonical()
    assert measured.fit.width(18) == pytest.approx(17.8)
    if template_id == "flatpack_stool":
        leg = extract_features(solid_of(measured_parts["leg_a"].shape), "leg_a", 18).outline
        middle = (leg.bounds[0] + leg.bounds[2]) / 2
        (gap,) = [g for g in gaps_across(leg, measured.leg_height * 0.8) if g[0] < middle < g[1]]
        assert gap[1] - gap[0] == pytest.approx(17.8, abs=1e-3)
    else:
        board = extract_features(solid_of(measured_parts["board"].shape), "board", 18)
        assert {round(c.bounds[2] - c.bounds[0], 3) for c in board.cutouts} == {17.8}
    for name, part in measured_parts.items():
        assert part.thickness == nominal_parts[name].thickness == 18
        ours, theirs = solid_of(part.shape).BoundingBox(), solid_of(nominal_parts[name].shape).BoundingBox()
        # a hook's tenon stops 1 mm short of the back of the board as it really is: 0.4 mm shorter
        shorter = 18 - 17.6 if name == "hook" else 0.0
        assert (ours.xlen, ours.ylen) == pytest.approx((theirs.xlen - shorter, theirs.ylen), abs=1e-3)


@pytest.mark.parametrize("template_id", SHAPED)
def test_outlines_are_shapes_not_rectangles(template_id):
    """What makes nesting pay: every part's outline leaves much of its bounding rectangle free, and has curves."""
    params, parts = built(template_id)
    shaped = {"flatpack_stool": {"leg_a": 0.8, "leg_b": 0.8, "seat": 0.8}, "coat_rack": {"hook": 0.75}}[template_id]
    for name, part in parts.items():
        outline = extract_features(solid_of(part.shape), name, part.thickness).outline
        rectangle = outline.minimum_rotated_rectangle
        assert outline.area < shaped.get(name, 1.0) * rectangle.area, name
        assert len(outline.exterior.coords) > 40, name  # arcs (an arched or rounded board too), many short segments


@pytest.mark.parametrize(("template_id", "values", "grain"), [
    ("flatpack_stool", {}, {"leg_a": "y", "leg_b": "y", "seat": None}),
    ("flatpack_stool", {"seat_shape": "square"}, {"leg_a": "y", "leg_b": "y", "seat": "x"}),
    ("coat_rack", {}, {"board": "x", "hook": "x"}),
])
def test_grain_runs_along_the_parts_that_need_it(template_id, values, grain):
    """Up the legs (a leg across the grain splits at its slot), along the board and the hook's arm; a round seat
    may lie any way. The render records it for nesting."""
    _, parts = built(template_id, values)
    assert {name: part.grain for name, part in parts.items()} == grain
    manifest = parametric.render(template_id, values, formats=["step"])
    assert {part["name"]: part["grain"] for part in manifest.parts} == grain


CAM_CASES = [(t, preset) for t in SHAPED for preset in [None, *parametric.get_template(t).presets]]


@pytest.mark.integration
@pytest.mark.parametrize(("template_id", "preset"), CAM_CASES, ids=[f"{t}-{p or 'defaults'}" for t, p in CAM_CASES])
def test_every_preset_cuts_on_the_shop_router_and_passes_rs274(template_id, preset, tmp_path):
    from parametric.machines import machine_from_dict
    from parametric.production import produce

    from ..parametric.conftest import require, router_record

    require("rs274", "linuxcnc-uspace")
    router = machine_from_dict(router_record())
    made = produce(template_id, {}, router, tmp_path, preset=preset, verify=True)
    template = parametric.get_template(template_id)
    assert {r.part for r in made.cam} == {p["name"] for p in made.manifest.parts}
    for result in made.cam:
        assert result.verified_moves and result.verified_moves > 100
        outline = next(op for op in result.operations if op.kind == "profile_outside")
        # the sharp corners that locate a mating part get dogbones: slot ends, tenon shoulders
        if result.part in ("leg_a", "leg_b", "hook"):
            assert outline.dogbones == 2, result.part
    if template_id == "coat_rack":
        board = next(r for r in made.cam if r.part == "board")
        mortises = next(op for op in board.operations if op.layer == "CUTOUT_THROUGH")
        assert mortises.dogbones == 4 * template.resolve(preset=preset).hook_count
