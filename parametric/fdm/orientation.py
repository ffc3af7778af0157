"""Which way up a printed part goes on the bed, and whether it still needs supports.

A template part may declare its print pose (``Part.print_rotation``: quarter turns about the part's own
axes, e.g. a bracket laid on its side so its arm is not a 98 mm overhang). Otherwise the core picks
one: every flat face the part can rest on (the facets of its convex hull, largest first, and the six
axis directions) is tried; of the poses it can stand in without toppling, the one with the least
overhanging surface wins, then the one with the most of the part touching the bed, then the lowest.
Overhang is surface facing downwards steeper than :data:`OVERHANG_ANGLE_DEG` from the vertical, above
the bed; what remains in the chosen pose above :data:`SUPPORT_THRESHOLD_MM2` gets supports when sliced.

This module works on trimesh meshes only: no CAD kernel, no slicer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trimesh

OVERHANG_ANGLE_DEG = 46.0
"""A surface leaning out further than this from the vertical prints over air. 45 degrees is the rule of
thumb (and what PrusaSlicer's automatic supports use at 0.2 mm layers); the extra degree keeps the 45
degree chamfers parts are designed with (a Gridfinity base) on the printable side of it."""
BRIDGE_WEIGHT = 0.25
"""A flat ceiling (the roof of a recess or a hole) is usually bridged wall to wall, which prints well; it
counts for a quarter of its area, so a pose is not turned on its head for a short bridge."""
SUPPORT_THRESHOLD_MM2 = 100.0
"""Overhanging surface a pose may keep without supports: the roofs of small holes and short bridges
print unsupported; anything larger gets support material."""
SMALL_SPAN_MM = 10.0
"""An overhanging region no longer than this any way across (the roof of a screw hole) bridges unsupported."""
BED_TOLERANCE_MM = 0.02
"""How close to the bed a downward face must be to rest on it."""
TIPPING_RATIO = 4.0
"""A pose is too tall to stand when its height exceeds this many times the side of a square as large as
what touches the bed (a 148 mm drawer pull on the 50 mm\N{SUPERSCRIPT TWO} end of its grip would topple)."""
HULL_FACETS_TRIED = 12
"""The convex hull's largest flat facets tried as the face to rest on, besides the six axis directions."""
AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}


@dataclass(frozen=True)
class PrintPose:
    """A part's pose on the bed: the 4x4 transform from its own coordinates (resting on Z = 0, its
    footprint's corner at the origin), and what that pose leaves to print."""

    matrix: np.ndarray
    contact_mm2: float
    overhang_mm2: float
    height_mm: float
    declared: bool = False

    @property
    def stands(self) -> bool:
        """Whether the part can stand in this pose without toppling as it grows."""
        return self.height_mm <= TIPPING_RATIO * math.sqrt(self.contact_mm2)

    @property
    def supports(self) -> bool:
        """Whether slicing needs support material for what still overhangs."""
        return self.overhang_mm2 > SUPPORT_THRESHOLD_MM2

    def as_dict(self) -> dict[str, object]:
        return {"matrix": [[round(float(v), 9) for v in row] for row in self.matrix],
                "contact_mm2": round(self.contact_mm2, 1), "overhang_mm2": round(self.overhang_mm2, 1),
                "height_mm": round(self.height_mm, 4), "supports": self.supports,
                "chosen": "declared by the template" if self.declared else "picked by the least overhang"}


def rotation_matrix(turns: Sequence[tuple[str, float]]) -> np.ndarray:
    """A 4x4 rotation from turns about the part's own axes, applied in order: ``[("Y", 90)]``."""
    matrix = np.eye(4)
    for axis, degrees in turns:
        if axis not in AXES:
            raise ValueError(f"print rotation axis {axis!r}: allowed X, Y or Z")
        matrix = trimesh.transformations.rotation_matrix(math.radians(degrees), AXES[axis]) @ matrix
    return matrix


def _rested(mesh: trimesh.Trimesh, rotation: np.ndarray) -> np.ndarray:
    """``rotation`` followed by the move that sets the rotated part on the bed at the origin."""
    corners = trimesh.transform_points(mesh.vertices, rotation)
    low = corners.min(axis=0)
    return trimesh.transformations.translation_matrix(-low) @ rotation


def evaluate(mesh: trimesh.Trimesh, rotation: np.ndarray, declared: bool = False) -> PrintPose:
    """What ``mesh`` turned by ``rotation`` and set on the bed touches and leaves overhanging."""
    matrix = _rested(mesh, rotation)
    vertices = trimesh.transform_points(mesh.vertices, matrix)
    normals = mesh.face_normals @ matrix[:3, :3].T
    faces_z = vertices[mesh.faces][:, :, 2]
    areas = mesh.area_faces
    on_bed = (normals[:, 2] < -0.999) & (faces_z.max(axis=1) < BED_TOLERANCE_MM)
    facing_down = normals[:, 2] < -math.sin(math.radians(OVERHANG_ANGLE_DEG))
    overhang = _without_small_spans(mesh, vertices, facing_down & ~on_bed)
    weights = np.where(normals[:, 2] < -0.999, BRIDGE_WEIGHT, 1.0)
    return PrintPose(matrix=matrix, contact_mm2=float(areas[on_bed].sum()),
                     overhang_mm2=float((areas * weights)[overhang].sum()), height_mm=float(vertices[:, 2].max()),
                     declared=declared)


def _without_small_spans(mesh: trimesh.Trimesh, vertices: np.ndarray, overhang: np.ndarray) -> np.ndarray:
    """``overhang`` less its regions no longer than :data:`SMALL_SPAN_MM` any way across: the roof of a
    small hole prints layer by layer as a short bridge."""
    faces = np.flatnonzero(overhang)
    if not len(faces):
        return overhang
    adjacency = mesh.face_adjacency
    both = overhang[adjacency[:, 0]] & overhang[adjacency[:, 1]]
    kept = overhang.copy()
    for region in trimesh.graph.connected_components(adjacency[both], nodes=faces, min_len=1):
        corners = vertices[mesh.faces[region]].reshape(-1, 3)[:, :2]
        if (corners.max(axis=0) - corners.min(axis=0)).max() <= SMALL_SPAN_MM:
            kept[region] = False
    return kept


def _candidate_rotations(mesh: trimesh.Trimesh) -> list[np.ndarray]:
    """Rotations that put each candidate resting face on the bed (its outward normal pointing down)."""
    down = np.array([0.0, 0.0, -1.0])
    normals = [np.array(v) for v in ((0, 0, -1), (0, 0, 1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))]
    try:
        hull = mesh.convex_hull
        order = np.argsort(hull.facets_area)[::-1][:HULL_FACETS_TRIED]
        normals += [hull.facets_normal[i] for i in order]
    except Exception:  # a degenerate hull (a flat part) leaves the axis directions
        pass
    rotations, seen = [], []
    for normal in normals:
        normal = normal / np.linalg.norm(normal)
        if any(np.dot(normal, other) > 0.9999 for other in seen):
            continue
        seen.append(normal)
        rotations.append(trimesh.geometry.align_vectors(normal, down))
    return rotations


def choose_pose(mesh: trimesh.Trimesh, turns: Sequence[tuple[str, float]] | None = None) -> PrintPose:
    """The pose to print ``mesh`` in: the template's declared ``turns``, else the least overhang, then the
    most contact with the bed, then the lowest, among the poses it can stand in."""
    if turns is not None:
        return evaluate(mesh, rotation_matrix(turns), declared=True)
    poses = [evaluate(mesh, rotation) for rotation in _candidate_rotations(mesh)]  # as built first
    poses = [pose for pose in poses if pose.stands] or poses
    least = min(pose.overhang_mm2 for pose in poses)
    slack = max(SUPPORT_THRESHOLD_MM2 / 4, 0.02 * least)
    near_least = [pose for pose in poses if pose.overhang_mm2 <= least + slack]
    most = max(pose.contact_mm2 for pose in near_least)
    # A pose touching the bed within 2 % of the most is as good: the first (as built) of them wins.
    return next(pose for pose in near_least if pose.contact_mm2 >= 0.98 * most)
