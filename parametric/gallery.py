"""The gallery: every template's presets rendered to shaded pictures, and an index page.

``parametric gallery --out output/gallery`` renders each preset (files through the normal
cache), draws a shaded isometric picture of its assembly with VTK off-screen, and writes
``index.html`` listing each template with its parameters, units, ranges and presets.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path

from .files import atomic_target, atomic_write
from .manifest import Manifest
from .registry import Template, templates

PICTURE_SIZE = (480, 360)


def picture(manifest: Manifest, target: Path, size: tuple[int, int] = PICTURE_SIZE) -> Path:
    """A shaded isometric PNG of the manifest's assembly (from its GLB), rendered off-screen."""
    import numpy as np
    import trimesh
    import vtk
    from vtk.util import numpy_support

    vtk.vtkObject.GlobalWarningDisplayOff()
    scene = trimesh.load(manifest.file("glb"), file_type="glb")
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.97, 0.97, 0.96)
    renderer.SetBackground2(0.86, 0.88, 0.91)
    renderer.GradientBackgroundOn()
    for mesh in scene.dump(concatenate=False):
        points = vtk.vtkPoints()
        points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(mesh.vertices, dtype=np.float64), deep=True))
        cells = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).astype(np.int64).ravel()
        polys = vtk.vtkCellArray()
        polys.SetCells(len(mesh.faces), numpy_support.numpy_to_vtkIdTypeArray(cells, deep=True))
        data = vtk.vtkPolyData()
        data.SetPoints(points)
        data.SetPolys(polys)
        normals = vtk.vtkPolyDataNormals()
        normals.SetInputData(data)
        normals.SetFeatureAngle(35)
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(normals.GetOutputPort())
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        colour = mesh.visual.face_colors[0][:3] / 255.0 if len(mesh.faces) else (0.8, 0.8, 0.8)
        actor.GetProperty().SetColor(*colour)
        actor.GetProperty().SetSpecular(0.2)
        actor.GetProperty().SetSpecularPower(20)
        renderer.AddActor(actor)
        edges = vtk.vtkFeatureEdges()
        edges.SetInputData(data)
        edges.BoundaryEdgesOff()
        edges.ManifoldEdgesOff()
        edges.NonManifoldEdgesOff()
        edges.FeatureEdgesOn()
        edges.SetFeatureAngle(35)
        edge_mapper = vtk.vtkPolyDataMapper()
        edge_mapper.SetInputConnection(edges.GetOutputPort())
        edge_mapper.ScalarVisibilityOff()
        edge_actor = vtk.vtkActor()
        edge_actor.SetMapper(edge_mapper)
        edge_actor.GetProperty().SetColor(0.15, 0.15, 0.18)
        edge_actor.GetProperty().SetLineWidth(1.2)
        renderer.AddActor(edge_actor)
    camera = renderer.GetActiveCamera()
    camera.SetPosition(1, -1.4, 0.9)
    camera.SetFocalPoint(0, 0, 0)
    camera.SetViewUp(0, 0, 1)
    renderer.ResetCamera()  # fits the bounding sphere with a margin: tall products stay whole in the frame
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(4)
    window.AddRenderer(renderer)
    window.SetSize(*size)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.ReadFrontBufferOff()
    grab.Update()
    with atomic_target(target) as temporary:
        writer = vtk.vtkPNGWriter()
        writer.SetFileName(str(temporary))
        writer.SetInputConnection(grab.GetOutputPort())
        writer.Write()
    window.Finalize()
    return target


def _range(template: Template, name: str) -> str:
    return html.escape(template.Params.allowed(name))


def _template_section(template: Template, rows: list[tuple[str, str, Manifest]], root: Path) -> str:
    e = html.escape
    fields = []
    for name in template.Params.model_fields:
        meta = template.Params.field_help(name)
        default = meta["default"]
        fields.append(f"<tr><td><code>{e(name)}</code></td><td>{e(meta['description'])}</td>"
                      f"<td>{e(meta.get('unit') or '')}</td><td>{e('derived' if default is None else str(default))}"
                      f"</td><td>{_range(template, name)}</td></tr>")
    cards = []
    for key, label, manifest in rows:
        links = " ".join(f'<a href="{e(os.path.relpath(manifest.directory / f["filename"], root))}">'
                         f'{e(f["filename"])}</a>' for f in manifest.files)
        size = " x ".join(f"{v:g}" for v in manifest.bbox_mm)
        cards.append(f'<figure><img src="{e(key)}.png" alt="{e(template.name)}: {e(label)}" width="{PICTURE_SIZE[0]}"'
                     f' height="{PICTURE_SIZE[1]}"><figcaption><strong>{e(label)}</strong> '
                     f'<code>--preset {e(key.split("/")[-1])}</code><br>{e(size)} mm, {manifest.mass_g:g} g '
                     f'{e(manifest.material["name"])}<br>{links}</figcaption></figure>')
    return (f'<section id="{e(template.id)}"><h2>{e(template.name)} <small><code>{e(template.id)}</code> '
            f'v{e(template.version)}</small></h2><p>{e(template.description)}</p>'
            f'<p>Family: {e(template.family)} &middot; process: {e(", ".join(template.process))} &middot; '
            f'materials: {e(", ".join(template.materials))}</p><div class="cards">{"".join(cards)}</div>'
            f'<table><thead><tr><th>Parameter</th><th>What it is</th><th>Unit</th><th>Default</th>'
            f'<th>Allowed</th></tr></thead><tbody>{"".join(fields)}</tbody></table></section>')


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.cards{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:.5em;
max-width:480px}img{max-width:100%;height:auto}figcaption{font-size:.9em}table{border-collapse:collapse;margin:1em 0;
width:100%;font-size:.9em}td,th{border-bottom:1px solid #e4e4e4;padding:.3em .5em;text-align:left;vertical-align:top}
nav a{margin-right:1em}small{color:#666;font-weight:normal}"""


def build_gallery(out: Path, only: list[str] | None = None, with_pictures: bool = True,
                  on_render: Callable[[str, str, Manifest], None] | None = None) -> Path:
    """Render every preset of every (or the given) template into ``out`` and write ``index.html``;
    ``on_render(template_id, preset, manifest)`` hears of each preset as it is done."""
    from .render import render

    out = out.resolve()
    sections, nav = [], []
    for template in templates():
        if only and template.id not in only:
            continue
        rows = []
        for key, preset in template.presets.items():
            folder = out / template.id / key
            manifest = render(template.id, {}, preset=key, out_dir=folder,
                              material=preset.material, formats=("step", "stl", "3mf", "glb"))
            if with_pictures:
                picture(manifest, out / template.id / f"{key}.png")
            rows.append((f"{template.id}/{key}", preset.label, manifest))
            if on_render is not None:
                on_render(template.id, key, manifest)
        sections.append(_template_section(template, rows, out))
        nav.append(f'<a href="#{html.escape(template.id)}">{html.escape(template.name)}</a>')
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>Template gallery</title><style>{STYLE}</style>"
            f"</head><body><h1>Template gallery</h1><p>Every product template with its presets, parameters, "
            f"units and ranges. Lengths accept units (<code>32in</code>, <code>80cm</code>); everything "
            f"inside is millimetres.</p><nav>{''.join(nav)}</nav>{''.join(sections)}</body></html>")
    return atomic_write(out / "index.html", page)
