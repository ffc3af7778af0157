"""A printed part's footprint: the outline its mesh covers on the bed, as it is printed.

Parts are printed lying as they are modelled (never tipped onto a side), so the footprint is the
mesh's projection onto the XY plane in the STL's own coordinates (mm): its outer outline, or its
convex hull when the projection cannot be traced. Holes in the projection are left out: nothing
is packed into them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPoint, Polygon

from ..errors import FieldError, ValidationError

SIMPLIFY_MM = 0.05
"""Tolerance the traced outline is simplified by; a simplified outline that would cut into the part is grown by
this much first (the true outline is then at most this much inside the footprint)."""


def read_mesh(path: str | os.PathLike[str], label: str | None = None) -> Any:
    """The triangle mesh in the STL (or 3MF/OBJ/PLY) at ``path``, refused in plain words when it is missing, not a
    mesh, empty or flat; ``label`` names the file in errors (default: the path as given)."""
    import numpy
    import trimesh

    name = label or str(path)
    if not Path(path).is_file():
        raise ValidationError([FieldError(name, "cannot be read: no such file")])
    try:
        mesh = trimesh.load(Path(path), force="mesh")
    except Exception as error:  # trimesh raises many kinds on a damaged file
        raise ValidationError([FieldError(name, f"is not a readable mesh file (STL, 3MF, OBJ or PLY): {error}")]
                              ) from None
    faces = getattr(mesh, "faces", None)
    if faces is None or len(faces) == 0:
        raise ValidationError([FieldError(name, "holds no triangles; an STL of a solid part is needed")])
    if not numpy.isfinite(mesh.vertices).all():
        raise ValidationError([FieldError(name, "has vertices that are not finite numbers")])
    extent = mesh.extents
    if min(extent) <= 1e-6:
        raise ValidationError([FieldError(name, f"is flat ({' x '.join(f'{v:g}' for v in extent)} mm); "
                                                "an STL of a solid part is needed")])
    return mesh


def footprint(mesh: Any) -> Polygon:
    """The outline (mm, the mesh's own XY) the mesh covers on the bed: the outer ring of its projection onto XY,
    simplified by :data:`SIMPLIFY_MM` outwards; its convex hull when the projection cannot be traced."""
    from trimesh.path.polygons import projected

    hull = MultiPoint(mesh.vertices[:, :2]).convex_hull
    try:
        shadow = projected(mesh, normal=(0.0, 0.0, 1.0), ignore_sign=True)
    except Exception:  # a broken mesh: the hull covers it anyway
        shadow = None
    if shadow is None or shadow.is_empty:
        return Polygon(hull.exterior)
    if shadow.geom_type == "MultiPolygon":  # separate islands: one part all the same, packed by their hull
        return Polygon(hull.exterior)
    outline = Polygon(shadow.exterior)
    simpler = outline.simplify(SIMPLIFY_MM)
    if simpler.is_valid and simpler.geom_type == "Polygon" and simpler.buffer(1e-6).covers(outline):
        return Polygon(simpler.exterior)  # a box or another outline with straight sides stays exact
    grown = outline.buffer(SIMPLIFY_MM, join_style="mitre", mitre_limit=2.0).simplify(SIMPLIFY_MM)
    if not grown.is_valid or grown.geom_type != "Polygon" or not grown.covers(outline):
        grown = outline.buffer(SIMPLIFY_MM, join_style="mitre", mitre_limit=2.0)
    return Polygon(grown.exterior) if grown.geom_type == "Polygon" else Polygon(hull.exterior)
