"""render(): manifest contents, the content-addressed cache, atomic output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import parametric
from parametric import GeometryError, ValidationError
from parametric.cache import Cache


def test_manifest_describes_the_render(out_dir):
    manifest = parametric.render("wall_shelf", {"width": 640}, out_dir=out_dir, material="oak")
    data = json.loads((out_dir / "manifest.json").read_text())
    assert manifest.path == out_dir / "manifest.json"
    for key in ("template", "version", "params", "cache_key", "files", "checks", "bbox_mm", "volume_mm3",
                "mass_g", "timings"):
        assert key in data
    assert data["params"]["width"] == 640
    assert data["material"]["id"] == "oak"
    # each part in its process's material: the oak board is cut, the brackets are printed in PLA
    parts = {p["name"]: p for p in data["parts"]}
    assert (parts["board"]["material"], parts["bracket"]["material"]) == ("oak", "pla")
    board, bracket = parts["board"], parts["bracket"]
    assert board["mass_g"] == pytest.approx(board["volume_mm3"] / 1000 * 0.75, rel=1e-3)
    assert bracket["mass_g"] == pytest.approx(bracket["volume_mm3"] / 1000 * 1.24, rel=1e-3)
    assert data["mass_g"] == pytest.approx(board["mass_g"] + bracket["quantity"] * bracket["mass_g"], abs=0.05)
    assert {f["format"] for f in data["files"]} == {"step", "stl", "3mf", "glb"}
    for record in data["files"]:
        assert (out_dir / record["filename"]).stat().st_size == record["bytes"] > 0
    assert data["bbox_mm"][0] == pytest.approx(640)


def test_same_request_is_a_cache_hit_with_the_same_bytes(tmp_path):
    first = parametric.render("wall_shelf", {"width": 655}, out_dir=tmp_path / "a")
    second = parametric.render("wall_shelf", {"width": "655 mm"}, out_dir=tmp_path / "b")
    assert second.cache_hit and second.cache_key == first.cache_key
    assert [f["sha256"] for f in first.files] == [f["sha256"] for f in second.files]
    third = parametric.render("wall_shelf", {"width": 656}, out_dir=tmp_path / "c")
    assert third.cache_key != first.cache_key


def test_cache_key_changes_with_export_settings():
    coarse = parametric.render("wall_shelf", {"width": 700}, formats="stl",
                               settings=parametric.ExportSettings(tolerance=0.2))
    fine = parametric.render("wall_shelf", {"width": 700}, formats="stl")
    assert coarse.cache_key != fine.cache_key
    assert coarse.parts[0]["checks"]["triangles"] <= fine.parts[0]["checks"]["triangles"]


def test_cache_hit_does_not_import_the_cad_kernel(output_root):
    parametric.render("wall_shelf", {"width": 720}, formats="stl,step")
    script = textwrap.dedent("""
        import sys, parametric
        m = parametric.render("wall_shelf", {"width": 720}, formats="stl")
        print(m.cache_hit, "cadquery" in sys.modules, "OCP" in sys.modules, "trimesh" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False", "False", "False"]


def test_a_missing_format_is_added_to_the_entry(tmp_path):
    first = parametric.render("wall_shelf", {"width": 730}, formats="stl")
    second = parametric.render("wall_shelf", {"width": 730}, formats="stl,svg,dxf", out_dir=tmp_path)
    assert not second.cache_hit and second.cache_key == first.cache_key
    assert {f["format"] for f in second.files} == {"stl", "svg", "dxf"}
    assert parametric.render("wall_shelf", {"width": 730}, formats="svg").cache_hit


def test_an_entry_without_its_index_is_rebuilt(output_root):
    manifest = parametric.render("wall_shelf", {"width": 745}, formats="stl")
    folder = Cache().folder(manifest.cache_key)
    (folder / "entry.json").unlink()  # as if the writer died before publishing
    again = parametric.render("wall_shelf", {"width": 745}, formats="stl")
    assert not again.cache_hit and (folder / "entry.json").exists()


def test_invalid_input_writes_nothing(tmp_path):
    with pytest.raises(ValidationError) as caught:
        parametric.render("wall_shelf", {"width": 10, "depth": "x"}, out_dir=tmp_path / "o", material="steel",
                          formats="step,obj")
    assert {e.field for e in caught.value.errors} == {"width", "depth", "material", "formats"}
    assert not (tmp_path / "o").exists()


def test_dxf_is_refused_for_a_product_made_only_by_printing():
    with pytest.raises(ValidationError, match="dxf is for flat CNC sheet parts"):
        parametric.render("insole", {}, formats="dxf")


def test_envelope_fit_is_reported():
    small = parametric.render("wall_shelf", {"width": 800}, formats="stl", envelope=(250, 210, 210))
    fit = small.checks["fits_envelope"]
    assert fit["fits"] is False and "board is 800 x 200" in fit["reason"]
    assert fit["parts"]["bracket"] is True
    big = parametric.render("wall_shelf", {"width": 800}, formats="stl", envelope=(250, 900, 250))
    assert big.checks["fits_envelope"]["fits"] is True  # the board fits turned a quarter


class _Broken(parametric.Template):
    id = "test_broken"
    version = "0.0.1"
    name = "Deliberately broken"
    family = "home"
    process = ("fdm",)
    materials = ("pla",)
    Params = parametric.get_template("wall_shelf").Params

    def build(self, params):
        import cadquery as cq

        return cq.Workplane().box(10, 10, 10).edges().fillet(params.width)  # radius far too large


def test_kernel_failure_is_a_geometry_error_naming_template_and_parameters(tmp_path):
    from parametric.registry import _REGISTRY

    _REGISTRY["test_broken"] = _Broken()
    try:
        with pytest.raises(GeometryError) as caught:
            parametric.render("test_broken", {"width": 500}, out_dir=tmp_path / "o")
        assert caught.value.template == "test_broken" and caught.value.params["width"] == 500
        assert "test_broken" in str(caught.value) and '"width": 500' in str(caught.value)
        assert not (tmp_path / "o").exists()
    finally:
        del _REGISTRY["test_broken"]


def test_the_build_sees_the_canonical_values_the_key_names():
    """Values that differ below the canonical rounding share a key, so they must share geometry."""
    first = parametric.render("wall_shelf", {"width": 733.00004}, formats="stl")
    assert first.params["width"] == 733.0 and first.bbox_mm[0] == pytest.approx(733.0, abs=1e-3)
    second = parametric.render("wall_shelf", {"width": 732.99996}, formats="stl")
    assert second.cache_hit and second.cache_key == first.cache_key


def test_a_preset_is_made_in_its_own_material(tmp_path):
    from parametric.machines import Printer, Router, StockSheet
    from parametric.production import material_for

    cup = parametric.render("gridfinity_bin", preset="pen-cup-1x1", formats="stl")
    assert cup.material["id"] == "petg" and cup.parts[0]["material"] == "petg"
    assert parametric.render("gridfinity_bin", preset="pen-cup-1x1", formats="stl", material="pla").material["id"] \
        == "pla"
    door = parametric.get_template("cabinet_door")
    router = Router("shop", (2500, 1250), stock=[StockSheet("oak", 19, (2500, 1250))])
    assert material_for(door, router, None, "tall-pantry") == "oak"
    assert material_for(door, router, None, None) == door.materials[0]
    printer = Printer("mk4", (250, 210, 220), materials=["petg"])
    assert material_for(parametric.get_template("gridfinity_bin"), printer, None, "pen-cup-1x1") == "petg"
