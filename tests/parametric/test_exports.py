"""Exports round-trip: STEP re-imports with the same volume, meshes load watertight, GLB loads."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from stl import mesh as numpy_stl

import parametric

ALL = "step,stl,3mf,glb,svg"
TEMPLATES = [t.id for t in parametric.templates()]


@pytest.fixture(scope="module", params=TEMPLATES)
def rendered(request, tmp_path_factory):
    template = parametric.get_template(request.param)
    formats = ALL + (",dxf" if "cnc" in template.process else "")
    return parametric.render(request.param, {}, out_dir=tmp_path_factory.mktemp(request.param), formats=formats)


def test_step_reimports_with_the_same_volume(rendered):
    import cadquery as cq

    for part in rendered.parts:
        shape = cq.importers.importStep(str(rendered.file("step", part["name"]))).val()
        assert shape.isValid()
        assert shape.Volume() == pytest.approx(part["volume_mm3"], rel=0.005)


def test_stl_and_3mf_load_watertight(rendered):
    for part in rendered.parts:
        for format_ in ("stl", "3mf"):
            loaded = trimesh.load(rendered.file(format_, part["name"]), force="mesh")
            assert loaded.is_watertight and loaded.is_winding_consistent, f"{part['name']}.{format_}"
            assert loaded.volume == pytest.approx(part["volume_mm3"], rel=0.02)


def test_3mf_objects_are_named_by_product_and_part(rendered):
    import re
    import zipfile

    for part in rendered.parts:
        with zipfile.ZipFile(rendered.file("3mf", part["name"])) as archive:
            model = archive.read("3D/3dmodel.model").decode()
        assert re.findall(r'<object [^>]*name="([^"]*)"', model) == [f"{rendered.template} {part['name']}"]


def test_stl_is_binary_and_readable_by_numpy_stl(rendered):
    for part in rendered.parts:
        path = rendered.file("stl", part["name"])
        assert not path.read_bytes()[:5].lower().startswith(b"solid")
        loaded = numpy_stl.Mesh.from_file(str(path))
        volume, _, _ = loaded.get_mass_properties()
        assert volume == pytest.approx(part["volume_mm3"], rel=0.02)
        extents = np.ptp(loaded.vectors.reshape(-1, 3), axis=0)
        assert np.allclose(extents, part["size_mm"], atol=0.05)


def test_glb_loads_with_every_placed_part(rendered):
    scene = trimesh.load(rendered.file("glb"), file_type="glb")
    copies = sum(part["quantity"] for part in rendered.parts)
    assert len(scene.graph.nodes_geometry) == copies
    assert np.allclose(scene.extents, rendered.bbox_mm, atol=0.05)


def test_svg_and_dxf_are_drawings(rendered):
    svg = rendered.file("svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<path" in svg
    for path in rendered.paths("dxf"):
        import ezdxf

        document = ezdxf.readfile(path)
        assert len(document.modelspace()) > 0


def test_dxf_keeps_blind_features_blind(tmp_path):
    """Hinge cups are 12 mm deep in an 18 mm door: a DXF must not draw them as through-cuts."""
    import ezdxf

    door = parametric.render("cabinet_door", {}, formats="dxf", out_dir=tmp_path / "door")
    layers = {}
    for entity in ezdxf.readfile(door.file("dxf")).modelspace():
        layers.setdefault(entity.dxf.layer, []).append(entity)
    assert len(layers["PROFILE_THROUGH"]) == 1
    cups = layers["DRILL_35MM_12DEEP"]
    assert len(cups) == 2 and all(c.dxf.radius == pytest.approx(17.5) for c in cups)
    assert not any(name.startswith("POCKET_0") for name in layers)
    shelf = parametric.render("wall_shelf", {}, formats="dxf", out_dir=tmp_path / "shelf")
    board = [e for e in ezdxf.readfile(shelf.file("dxf", "board")).modelspace() if e.dxf.layer == "DRILL_5MM"]
    assert len(board) == len(parametric.get_template("wall_shelf").validate({}).hole_positions())
