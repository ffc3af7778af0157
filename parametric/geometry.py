"""From B-rep to mesh, and the checks written into every result.

This module imports the CAD kernel; the cache-hit path never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cadquery as cq
import numpy as np
import trimesh

from .fdm.orientation import PrintPose, choose_pose
from .part import Part, solid_of


@dataclass
class PartGeometry:
    """A part's kernel shape, its welded mesh, and the measurements taken from both."""

    part: Part
    shape: Any
    mesh: trimesh.Trimesh
    checks: dict[str, Any] = field(default_factory=dict)
    volume_mm3: float = 0.0
    size_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    print_pose: PrintPose | None = None

    @property
    def placements(self) -> list[Any]:
        return self.part.placements or [cq.Location()] * self.part.quantity

    @property
    def file_mesh(self) -> trimesh.Trimesh:
        """The mesh its STL and 3MF hold: a printed part in its pose on the bed, any other as built."""
        if self.print_pose is None:
            return self.mesh
        return self.mesh.copy().apply_transform(self.print_pose.matrix)

    def pose_for_printing(self) -> None:
        """Choose the printed pose (the template's, else the least overhang); the part's size becomes the
        size it prints at, as its STL and 3MF have it."""
        self.print_pose = choose_pose(self.mesh, self.part.print_rotation)
        extents = self.file_mesh.extents if len(self.mesh.vertices) else np.zeros(3)
        self.size_mm = tuple(round(float(v), 4) for v in extents)


def location_matrix(location: Any) -> np.ndarray:
    """A 4x4 homogeneous matrix from a ``cadquery.Location``."""
    transform = location.wrapped.Transformation()
    matrix = np.eye(4)
    for row in range(3):
        for column in range(4):
            matrix[row, column] = transform.Value(row + 1, column + 1)
    return matrix


def tessellate(shape: Any, tolerance: float, angular_tolerance: float) -> trimesh.Trimesh:
    """A welded triangle mesh of ``shape``: shared vertices, so slicers see it as manifold."""
    vertices, triangles = shape.tessellate(tolerance, angular_tolerance)
    mesh = trimesh.Trimesh(
        vertices=np.array([v.toTuple() for v in vertices], dtype=np.float64).reshape(-1, 3),
        faces=np.array(triangles, dtype=np.int64).reshape(-1, 3),
        process=True,
        validate=False,
    )
    mesh.merge_vertices(digits_vertex=6)
    mesh.remove_unreferenced_vertices()
    return mesh


def measure(part: Part, tolerance: float, angular_tolerance: float) -> PartGeometry:
    """Tessellate one part and take its checks: one valid solid, watertight manifold mesh, size, volume."""
    shape = solid_of(part.shape)
    solids = shape.Solids()
    valid = bool(shape.isValid())
    mesh = tessellate(shape, tolerance, angular_tolerance)
    volume = float(shape.Volume())
    extents = mesh.bounds[1] - mesh.bounds[0] if len(mesh.vertices) else np.zeros(3)
    checks = {
        "valid_solid": valid and len(solids) == 1,
        "solids": len(solids),
        "brep_valid": valid,
        "watertight": bool(mesh.is_watertight),
        "manifold": bool(mesh.is_watertight and mesh.is_winding_consistent),
        "positive_volume": volume > 0 and bool(mesh.is_volume),
        "mesh_volume_mm3": round(float(mesh.volume), 3) if len(mesh.faces) else 0.0,
        "triangles": int(len(mesh.faces)),
    }
    return PartGeometry(part=part, shape=shape, mesh=mesh, checks=checks, volume_mm3=volume,
                        size_mm=tuple(round(float(v), 4) for v in extents))


def failed_checks(geometry: PartGeometry) -> list[str]:
    """The names of the checks a part fails, in words."""
    reasons = []
    checks = geometry.checks
    if not checks["valid_solid"]:
        reasons.append(f"part {geometry.part.name!r} is not one valid solid "
                       f"({checks['solids']} solids, B-rep valid: {checks['brep_valid']})")
    if not checks["watertight"]:
        reasons.append(f"part {geometry.part.name!r} mesh is not watertight")
    elif not checks["manifold"]:
        reasons.append(f"part {geometry.part.name!r} mesh has inconsistent face winding")
    if not checks["positive_volume"]:
        reasons.append(f"part {geometry.part.name!r} has no positive enclosed volume")
    return reasons


def assembly_bounds(geometries: list[PartGeometry]) -> np.ndarray:
    """The (2, 3) bounds of every copy of every part placed in the assembly."""
    lows, highs = [], []
    for geometry in geometries:
        corners = trimesh.bounds.corners(geometry.mesh.bounds)
        for location in geometry.placements:
            moved = trimesh.transform_points(geometry.mesh.vertices if len(geometry.mesh.vertices) < 20000
                                             else corners, location_matrix(location))
            lows.append(moved.min(axis=0))
            highs.append(moved.max(axis=0))
    return np.array([np.min(lows, axis=0), np.max(highs, axis=0)])


def assembly_compound(geometries: list[PartGeometry]) -> Any:
    """Every copy of every part, placed, as one compound (for drawings)."""
    shapes = [geometry.shape.moved(location) for geometry in geometries for location in geometry.placements]
    return cq.Compound.makeCompound(shapes)
