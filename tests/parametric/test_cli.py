"""The command line: the same contract as the API, with exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parametric.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True)


def test_templates_json_lists_each_template():
    result = run("templates", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {"wall_shelf", "insole"} <= {r["id"] for r in rows}
    for row in rows:
        assert set(row) == {"id", "version", "name", "family", "process", "materials"}


def test_schema_has_units_and_presets(capsys):
    assert main(["schema", "wall_shelf"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["depth"]["unit"] == "mm" and schema["x-presets"]


def test_schema_with_stock_names_the_thicknesses_the_routers_stock(capsys, tmp_path, make_router):
    from parametric.machines import MachineStore, machine_from_dict

    store = tmp_path / "machines.json"
    record = make_router()
    record["stock"] = [{"material": "oak", "thickness_mm": 22, "size_mm": [2500, 1250]}]
    MachineStore(store).add(machine_from_dict(record))
    assert main(["schema", "wall_shelf", "--stock", "--store", str(store)]) == 0
    stocked = json.loads(capsys.readouterr().out)["properties"]["board_thickness"]["x-stocked"]
    assert stocked == {"birch_plywood": [], "oak": [22], "pine": [], "mdf": []}


def test_render_writes_files_and_prints_the_manifest_path(tmp_path):
    result = run("render", "wall_shelf", "--set", "width=30in", "--set", "depth=20cm", "--preset", "bookshelf",
                 "--formats", "step,stl,3mf,glb,svg,dxf", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert path == str(tmp_path / "manifest.json")
    manifest = json.loads(open(path).read())
    assert manifest["params"]["width"] == pytest.approx(762) and manifest["params"]["board_thickness"] == 22
    assert {f["format"] for f in manifest["files"]} == {"step", "stl", "3mf", "glb", "svg", "dxf"}
    for key in ("cache_key", "checks", "bbox_mm", "volume_mm3", "mass_g", "timings"):
        assert key in manifest


def test_render_without_out_uses_the_output_folder(output_root):
    result = run("render", "wall_shelf", "--set", "width=500")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(output_root / "wall_shelf"))


@pytest.mark.parametrize(("args", "field", "allowed"), [
    (["--set", "width=5000"], "width", "300 to 1500 mm"),
    (["--set", "width=wide"], "width", "length"),
    (["--set", "bracket_count=2.5"], "bracket_count", "whole number from 2 to 8"),
    (["--set", "colour=red"], "colour", "unknown parameter"),
    (["--set", "depth=10 furlongs"], "depth", "not a unit we know"),
    (["--preset", "nope"], "preset", "spice-rack"),
    (["--formats", "obj"], "formats", "step, stl, 3mf"),
    (["--material", "steel"], "material", "birch_plywood"),
    (["--set", "width"], "width", "NAME=VALUE"),
])
def test_invalid_input_exits_2_naming_the_field(args, field, allowed):
    result = run("render", "wall_shelf", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"  {field}: " in result.stderr and allowed in result.stderr
    assert "Traceback" not in result.stderr


def test_every_bad_field_is_printed_at_once():
    result = run("render", "wall_shelf", "--set", "width=1", "--set", "depth=1", "--set", "x=1")
    assert result.returncode == 2
    for field in ("width", "depth", "x"):
        assert f"  {field}: " in result.stderr


def test_unknown_template_exits_2():
    result = run("render", "teapot")
    assert result.returncode == 2 and "template: unknown template 'teapot'" in result.stderr


def test_kernel_failure_exits_1_naming_template_and_parameters(capsys, monkeypatch):
    import parametric
    from parametric.registry import _REGISTRY

    from .test_render import _Broken

    monkeypatch.setitem(_REGISTRY, "test_broken", _Broken())
    assert main(["render", "test_broken", "--set", "width=600", "--formats", "stl"]) == 1
    error = capsys.readouterr().err
    assert "test_broken" in error and '"width": 600' in error and "Traceback" not in error
    assert parametric.get_template("test_broken")
