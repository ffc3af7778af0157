"""One capability check for routing, quotes and CAM (issue 12): a sheet part is routed to a router only if CAM can
then make it there, and a refusal is CAM's own reason, naming what is missing. Real CadQuery, real CAM."""

from __future__ import annotations

import time

import pytest

from parametric import ValidationError, render
from parametric.cnc.capability import manifest_check
from parametric.machines import machine_from_dict
from parametric.production import estimate_cut, make
from parametric.routing import route

from ...conftest import require_module

require_module("shapely")

HANDLE = "a Ø4.1 mm through hole needs a 4.1 mm drill reaching 19.53 mm or an end mill under 4.1 mm reaching 18.3 mm"
SHORT_DRILL = ("a Ø5 mm through hole: the Ø5 mm drill T2 reaches 25 mm; this hole is 31.8 mm deep (a 30 mm board "
               "and the drill's point)")


def mdf_router(make_router, name: str, drill_reach: float, bed=(2500, 1250)):
    """A router stocking 30 mm MDF, with a 6 mm end mill reaching 35 mm and a 5 mm drill reaching ``drill_reach``."""
    record = make_router(name=name)
    record["bed_mm"] = list(bed)
    record["tools"] = [{**record["tools"][0], "flute_length_mm": 35}, {**record["tools"][1],
                                                                       "flute_length_mm": drill_reach}]
    record["stock"].append({"material": "mdf", "thickness_mm": 30, "size_mm": list(bed)})
    return machine_from_dict(record)


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    """A cabinet door with 4.1 mm handle holes: no drill matches, the 3 mm end mill reaches only 12 mm."""
    return render("cabinet_door", {"handle_hole_diameter": 4.1}, out_dir=tmp_path_factory.mktemp("door"),
                  formats=["step"], material="birch_plywood")


@pytest.fixture(scope="module")
def thick_shelf(tmp_path_factory):
    """A wall shelf whose board is 30 mm MDF with 5 mm screw holes through it."""
    return render("wall_shelf", {"board_thickness": 30}, out_dir=tmp_path_factory.mktemp("shelf"),
                  formats=["step"], material="mdf")


def part(manifest, name):
    return next(p for p in manifest.parts if p["name"] == name)


def test_a_handle_hole_no_tool_makes_is_refused_by_routing_and_cam_alike(door, router, tmp_path):
    verdict = route(part(door, "door"), "birch_plywood", [router], process="cnc", can_cut=manifest_check(door))
    assert not verdict.ok
    assert verdict.reason.startswith(HANDLE)
    assert "shop-router has T1 6 mm 2-flute endmill reaching 25 mm" in verdict.reason
    with pytest.raises(ValidationError) as refused:  # CAM refuses it before writing anything, in the same words
        make(door, router, tmp_path / "cam", material="birch_plywood")
    assert [(e.field, e.message) for e in refused.value.errors] == [("machine", f"door: {verdict.reason}")]
    assert not (tmp_path / "cam" / "cnc").exists()


def test_a_drill_too_short_for_the_board_sends_the_part_to_a_router_whose_drill_reaches(thick_shelf, make_router,
                                                                                        tmp_path):
    board = part(thick_shelf, "board")
    short = mdf_router(make_router, "short", 25, bed=(1300, 1250))  # the smaller machine: routing's first choice
    long = mdf_router(make_router, "long", 40)
    can_cut = manifest_check(thick_shelf, cache_root=tmp_path / "cache")
    alone = route(board, "mdf", [short], process="cnc", can_cut=can_cut)
    assert not alone.ok and alone.reason.startswith(SHORT_DRILL)
    assert route(board, "mdf", [short, long], process="cnc").machine.name == "short"  # without CAM's check
    chosen = route(board, "mdf", [short, long], process="cnc", can_cut=can_cut)
    assert chosen.machine.name == "long"
    # CAM agrees on both: the quote's estimate (CAM's own toolpaths) is made on the router routing chose ...
    assert estimate_cut(thick_shelf, chosen.machine, "board", material="mdf", cache_root=tmp_path).time_s > 60
    # ... and the short drill's router refuses with routing's reason
    with pytest.raises(ValidationError, match=SHORT_DRILL.replace("(", r"\(").replace(")", r"\)")):
        make(thick_shelf, short, tmp_path / "short", material="mdf", verify=False)
    both = route(board, "mdf", [short, mdf_router(make_router, "other", 20)], process="cnc", can_cut=can_cut)
    assert both.reason.startswith(f"on short: {SHORT_DRILL}") and "; on other: a Ø5 mm through hole" in both.reason


def test_the_check_is_cheap_once_known(thick_shelf, make_router, tmp_path):
    """A quote asks for every part on every router: the verdict is worked out once, then read from the cache."""
    board = part(thick_shelf, "board")
    routers = [mdf_router(make_router, "short", 25), mdf_router(make_router, "long", 40)]
    first = manifest_check(thick_shelf, cache_root=tmp_path)
    started = time.perf_counter()
    verdicts = [first(board, router, "mdf") for router in routers]
    cold = time.perf_counter() - started
    assert first.planned == 2 and verdicts[0].startswith(SHORT_DRILL) and verdicts[1] is None
    again = manifest_check(thick_shelf, cache_root=tmp_path)
    started = time.perf_counter()
    assert [again(board, router, "mdf") for router in routers] == verdicts
    warm = time.perf_counter() - started
    assert again.planned == 0  # read from disk: no STEP read, no planning
    assert warm < 0.05, warm
    print(f"cut check: {cold:.3f} s for two routers cold (STEP read once), {warm * 1000:.1f} ms from the cache")


def test_the_check_reads_the_part_fitted_to_the_routers_measured_sheets(make_router, tmp_path):
    """A router whose 18 mm plywood measures 17.6 mm cuts narrower dados: the check reads the part rebuilt so."""
    from parametric.joinery import FIT_ALLOWANCE_MM, stock_fit

    manifest = render("bookcase", {"height": 900, "width": 600, "depth": 250, "shelf_count": 2,
                                   "back_panel": False}, out_dir=tmp_path / "bookcase", formats=["step"],
                      material="birch_plywood")
    record = make_router()
    for sheet in record["stock"]:
        if sheet["material"] == "birch_plywood" and sheet["thickness_mm"] == 18:
            sheet["measured_thickness_mm"] = 17.6
    measured = machine_from_dict(record)
    check = manifest_check(manifest)
    side = part(manifest, "side")
    assert check(side, measured, "birch_plywood") is None
    features = check.features(side, stock_fit(measured, "birch_plywood"))
    widths = sorted({round(piece.bounds[2] - piece.bounds[0], 3) for pocket in features.pockets
                     for piece in getattr(pocket.region, "geoms", [pocket.region])})
    assert 17.6 + FIT_ALLOWANCE_MM in widths and 18 + FIT_ALLOWANCE_MM not in widths
