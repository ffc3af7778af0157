"""Exports through one format table: a new format is one function and one table entry.

Each exporter takes the built product (its measured parts) and a folder, writes its files
atomically and returns what it wrote. The table itself imports no CAD kernel, so the
format names can be validated on the cache-hit path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import atomic_target, atomic_write

if TYPE_CHECKING:
    from .geometry import PartGeometry


@dataclass(frozen=True)
class ExportSettings:
    """Mesh fineness for STL, 3MF and GLB: chord deviation in mm and angular deviation in radians."""

    tolerance: float = 0.05
    angular_tolerance: float = 0.2

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Product:
    """What the exporters see: the template id and its measured parts."""

    template_id: str
    parts: list[PartGeometry]
    settings: ExportSettings

    @property
    def multi_part(self) -> bool:
        return len(self.parts) > 1


@dataclass(frozen=True)
class Written:
    format: str
    part: str
    filename: str


Exporter = Callable[[Product, Path], list[Written]]


def _assembly(product: Product) -> Any:
    import cadquery as cq

    assembly = cq.Assembly(name=product.template_id)
    palette = [(0.80, 0.62, 0.42), (0.35, 0.45, 0.60), (0.55, 0.70, 0.45), (0.75, 0.45, 0.40)]
    for index, geometry in enumerate(product.parts):
        colour = cq.Color(*palette[index % len(palette)])
        for copy, location in enumerate(geometry.placements):
            assembly.add(geometry.shape, name=f"{geometry.part.name}_{copy + 1}", loc=location, color=colour)
    return assembly


def export_step(product: Product, folder: Path) -> list[Written]:
    """STEP AP214: each part on its own, plus the placed assembly when there are several parts."""
    import cadquery as cq

    written = []
    for geometry in product.parts:
        name = f"{geometry.part.name}.step"
        with atomic_target(folder / name) as target:
            cq.exporters.export(geometry.shape, str(target), "STEP")
        written.append(Written("step", geometry.part.name, name))
    if product.multi_part:
        name = f"{product.template_id}.step"
        with atomic_target(folder / name) as target:
            _assembly(product).export(str(target), "STEP")
        written.append(Written("step", "assembly", name))
    return written


def export_stl(product: Product, folder: Path) -> list[Written]:
    """Binary STL of each part from its welded mesh."""
    written = []
    for geometry in product.parts:
        name = f"{geometry.part.name}.stl"
        atomic_write(folder / name, geometry.file_mesh.export(file_type="stl"))
        written.append(Written("stl", geometry.part.name, name))
    return written


def export_3mf(product: Product, folder: Path) -> list[Written]:
    """3MF of each part from its welded mesh, so slicers see shared vertices and a manifold; the object is
    named by product and part (``wall_shelf bracket``), as a slicer's object list shows it."""
    import trimesh

    written = []
    for geometry in product.parts:
        name = f"{geometry.part.name}.3mf"
        label = f"{product.template_id} {geometry.part.name}"
        scene = trimesh.Scene()
        scene.add_geometry(geometry.file_mesh, geom_name=label, node_name=label)
        atomic_write(folder / name, scene.export(file_type="3mf"))
        written.append(Written("3mf", geometry.part.name, name))
    return written


def export_glb(product: Product, folder: Path) -> list[Written]:
    """One binary glTF of the placed assembly, for the web preview."""
    import trimesh

    from .geometry import location_matrix

    scene = trimesh.Scene()
    palette = [[205, 160, 110, 255], [90, 115, 155, 255], [140, 180, 115, 255], [190, 115, 100, 255]]
    for index, geometry in enumerate(product.parts):
        mesh = geometry.mesh.copy()
        mesh.visual.face_colors = palette[index % len(palette)]
        for copy, location in enumerate(geometry.placements):
            scene.add_geometry(mesh, node_name=f"{geometry.part.name}_{copy + 1}",
                               geom_name=geometry.part.name, transform=location_matrix(location))
    name = f"{product.template_id}.glb"
    atomic_write(folder / name, scene.export(file_type="glb"))
    return [Written("glb", "assembly", name)]


def export_svg(product: Product, folder: Path) -> list[Written]:
    """An isometric drawing view of the assembly with hidden lines, for job sheets."""
    import cadquery as cq

    from .geometry import assembly_compound

    name = f"{product.template_id}.svg"
    with atomic_target(folder / name) as target:
        cq.exporters.export(assembly_compound(product.parts), str(target), "SVG",
                            opt={"projectionDir": (1, -1, 1), "showHidden": True, "width": 800, "height": 600,
                                 "marginLeft": 40, "marginTop": 40, "strokeWidth": -1.5})
    return [Written("svg", "assembly", name)]


def export_dxf(product: Product, folder: Path) -> list[Written]:
    """A 1:1 mm DXF of each flat sheet part, one layer per feature kind (outline, cut-outs, pockets
    with their depth, holes), read from the B-rep so blind pockets never show as through-cuts."""
    from .cnc import extract_features, feature_dxf

    written = []
    for geometry in product.parts:
        if not geometry.part.flat:
            continue
        name = f"{geometry.part.name}.dxf"
        feature_dxf(extract_features(geometry.shape, geometry.part.name, geometry.part.thickness), folder / name)
        written.append(Written("dxf", geometry.part.name, name))
    return written


FORMATS: dict[str, Exporter] = {
    "step": export_step,
    "stl": export_stl,
    "3mf": export_3mf,
    "glb": export_glb,
    "svg": export_svg,
    "dxf": export_dxf,
}
"""Every export format by name; the order is the order files are written in."""

FORMAT_DESCRIPTIONS: dict[str, str] = {
    "step": "STEP B-rep for CAD, each part and the assembly",
    "stl": "binary STL mesh of each part, for slicers",
    "3mf": "3MF mesh of each part (welded, manifold), for slicers",
    "glb": "binary glTF of the assembly, for the web preview",
    "svg": "isometric drawing view with hidden lines",
    "dxf": "1:1 mm drawing of each flat sheet part, a layer per feature (outline, pockets, holes), for CNC",
}

DEFAULT_FORMATS: tuple[str, ...] = ("step", "stl", "3mf", "glb")
