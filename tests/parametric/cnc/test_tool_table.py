"""LinuxCNC's tool table is the job's: one ``tool.tbl`` beside all the programs of a job, listing every
tool any of them loads (issue 12: it was rewritten part by part, so it listed the last part's tools
only and rs274 refused the other programs with "Requested tool 1 not found")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parametric.cnc import run_rs274
from parametric.machines import MachineStore, machine_from_dict
from tests.parametric.conftest import SHEET_MATERIALS, feeds_for


def several_tools(make_router, name: str = "mill") -> dict:
    """A LinuxCNC router whose parts take different tools: a short 12 mm end mill for thin sheet and
    shallow pockets, the 6 mm one for the 22 mm sheet's through cuts, a 10 mm end mill and two drills."""
    record = make_router("linuxcnc", name)
    for number, diameter, kind, flute_length in ((4, 10, "endmill", 10), (5, 8, "drill", 40), (6, 12, "endmill", 8)):
        record["tools"].append({"number": number, "diameter_mm": diameter, "type": kind, "flutes": 2,
                                "flute_length_mm": flute_length,
                                "feeds": {m: feeds_for(m, diameter, 2, kind) for m in SHEET_MATERIALS}})
    record["stock"] += [{"material": m, "thickness_mm": 6, "size_mm": [2500, 1250]} for m in SHEET_MATERIALS]
    return record


@pytest.mark.integration
def test_a_multi_part_linuxcnc_job_has_one_tool_table_with_every_tool(rs274, tmp_path, make_router):
    store = tmp_path / "machines.json"
    MachineStore(store).add(machine_from_dict(several_tools(make_router)))
    out = tmp_path / "out"
    made = subprocess.run([sys.executable, "-m", "parametric.cli", "cam", "bookcase", "--set", "sheet_thickness=22",
                           "--machine", "mill", "--verify", "--store", str(store), "--out", str(out)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr  # --verify ran every program through rs274
    manifest = json.loads(Path(made.stdout.strip()).read_text())
    parts = manifest["cam"]["parts"]
    tools_of = {part["part"]: {t for program in part["programs"] for t in program["tools"]} for part in parts}
    assert len({frozenset(tools) for tools in tools_of.values()}) > 1  # the parts take different tools
    assert all(part["verified_moves"] > 100 for part in parts)
    assert {part["tool_table"] for part in parts} == {"tool.tbl"}
    assert [f["filename"] for f in manifest["files"] if f["format"] == "tool_table"] == ["cnc/tool.tbl"]
    table = out / "cnc" / "tool.tbl"
    listed = [int(line.split()[0][1:]) for line in table.read_text().splitlines()]
    assert listed == sorted(set().union(*tools_of.values()))
    for part in parts:
        for program in part["programs"]:
            assert run_rs274(out / "cnc" / program["file"], table).tools == program["tools"]
