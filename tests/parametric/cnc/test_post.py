"""Post-processors: every dialect in the table passes the same contract.

A small part is planned once per dialect and written by that dialect's post-processor; its
programs go through LinuxCNC's rs274 (GRBL's ``$`` lines stripped), the canonical moves reach
the outline grown by the tool radius, and the G-code words match what the post-processor
declares its controller supports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from shapely.geometry import box

from parametric.cnc import (
    POST_PROCESSORS,
    CamSettings,
    Hole,
    PartFeatures,
    Pocket,
    plan,
    run_rs274,
    write_gcode,
    write_tool_table,
)
from parametric.machines import DIALECTS, machine_from_dict

WIDTH, HEIGHT, THICKNESS = 200.0, 120.0, 12.0
HOLE = Hole((50.0, 60.0), 5.0, THICKNESS, True)
POCKET = box(100, 30, 160, 90)
PROFILE_RADIUS = 3.0  # the router's 6 mm end mill cuts the outline


def plate() -> PartFeatures:
    """A 200 x 120 x 12 mm plate with a 5 mm through hole (drilled) and a 4 mm deep pocket (end mill)."""
    outline = box(0, 0, WIDTH, HEIGHT)
    return PartFeatures(name="plate", thickness=THICKNESS, outline=outline, holes=[HOLE],
                        pockets=[Pocket(POCKET, 4.0, outline.difference(POCKET))])


@pytest.fixture(scope="module", params=sorted(POST_PROCESSORS))
def written(request, tmp_path_factory, make_router):
    """(post-processor, router, programs, folder) for the plate in one dialect."""
    post = POST_PROCESSORS[request.param]
    router = machine_from_dict(make_router(post.name, f"router-{post.name}"))
    folder = tmp_path_factory.mktemp(post.name)
    operations = plan(plate(), router, "birch_plywood")
    programs = write_gcode(operations, router, folder, "plate", material="birch_plywood", thickness=THICKNESS)
    table = write_tool_table(programs, router, folder)
    assert table == (folder / post.tool_table if post.tool_table else None)
    return post, router, programs, folder


def words(text: str) -> list[str]:
    """The G-code words of a program, comments left out."""
    code = re.sub(r"\([^)]*\)", " ", text)
    code = "\n".join(line.split(";", 1)[0] for line in code.splitlines())
    return code.upper().split()


def test_the_dialects_a_router_may_name_are_the_post_processor_table():
    assert DIALECTS == tuple(POST_PROCESSORS)
    assert all(name == post.name for name, post in POST_PROCESSORS.items())


@pytest.mark.integration
def test_every_dialect_runs_in_rs274_and_cuts_the_outline_grown_by_the_tool_radius(written, rs274):
    post, router, programs, folder = written
    table = folder / post.tool_table if post.tool_table else None
    margin = CamSettings().margin_mm
    cut = []
    for program in programs:
        canon = run_rs274(folder / program.filename, table)
        assert canon.cutting, program.filename
        cut.append(canon)
    outline = cut[-1].extents(0.0)  # the outline is cut last, by the profile tool
    assert outline == pytest.approx((margin - PROFILE_RADIUS, margin - PROFILE_RADIUS,
                                     margin + WIDTH + PROFILE_RADIUS, margin + HEIGHT + PROFILE_RADIUS), abs=1e-3)
    hole = box(margin + HOLE.center[0] - 1, margin + HOLE.center[1] - 1, margin + HOLE.center[0] + 1,
               margin + HOLE.center[1] + 1)
    assert min(c.deepest_within(hole) or 0.0 for c in cut) < -THICKNESS  # drilled through
    pocket = box(*(v + margin for v in POCKET.bounds)).buffer(-0.5)
    assert min(c.deepest_within(pocket) or 0.0 for c in cut) == pytest.approx(-4.0, abs=1e-6)


def test_each_dialect_writes_only_what_it_declares(written):
    post, router, programs, folder = written
    used = {op.tool.number for program in programs for op in program.operations}
    assert used == {1, 2}  # the drill and the end mill: a tool change, or a program each
    assert all(program.filename.endswith(f".{post.extension}") for program in programs)
    if post.one_program_per_tool:
        assert len(programs) == 2 and all(len(program.tools) == 1 for program in programs)
    else:
        assert len(programs) == 1 and {t.number for t in programs[0].tools} == used
    for program in programs:
        found = set(words((folder / program.filename).read_text()))
        assert ("M6" in found) == post.tool_changes
        assert bool(found & {"G43", "G49"}) == post.tool_length_offsets
        assert bool(found & {"G40", "G41", "G42"}) == post.cutter_compensation
        assert not found & {"G41", "G42"}  # the planner offsets every toolpath itself
        assert bool(found & {f"G{n}" for n in range(80, 90)}) == post.canned_cycles
        assert not found & {f"G{n}" for n in range(81, 90)}
        if post.tool_changes:
            assert {f"T{t.number}" for t in program.tools} <= found
        if post.tool_length_offsets:
            assert {f"H{t.number}" for t in program.tools} <= found
    tables = sorted(p.name for p in folder.iterdir() if not p.name.startswith("plate"))
    assert tables == ([post.tool_table] if post.tool_table else [])
    if post.tool_table:
        listed = {int(line.split()[0][1:]) for line in (folder / post.tool_table).read_text().splitlines()}
        assert listed == used


def test_no_dialect_is_named_outside_the_post_processors():
    """The writer, the planner and the rest ask a post-processor's declarations, never ``dialect == "..."``."""
    root = Path(__file__).resolve().parents[3] / "parametric"
    post_package = root / "cnc" / "post"
    found = []
    for path in sorted(root.rglob("*.py")):
        if post_package in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names_dialect = any(isinstance(s, ast.Attribute) and s.attr == "dialect" for s in sides)
                names_one = any(isinstance(s, ast.Constant) and s.value in POST_PROCESSORS for s in sides)
                if names_dialect and names_one:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert found == []
