"""What a template's build returns: one or more named parts, placed for the assembly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Part:
    """One physical piece of a product.

    ``shape`` is a CadQuery shape or workplane in the part's own coordinates (a flat sheet
    part lies on XY with its thickness along +Z, ready for CNC). ``placement`` is a
    ``cadquery.Location`` putting it in the assembly; ``None`` means where it stands.
    ``quantity`` counts identical copies; ``placements`` may list one location per copy.
    ``grain`` is the axis of the part's own coordinates (``"x"`` or ``"y"``) the wood grain must
    run along, for a part whose look or strength depends on it (a door face, a bookcase side);
    ``None`` when it may lie any way. Nesting keeps it along the sheet's grain (its length).
    ``print_rotation`` is a printed part's pose on the bed as turns about its own axes, applied in
    order (``(("Y", 90),)`` lays a part built standing on its side); ``None`` lets the core pick the
    pose with the least overhang (:mod:`parametric.fdm.orientation`).
    """

    name: str
    shape: Any
    quantity: int = 1
    placements: list[Any] = field(default_factory=list)
    flat: bool = False
    thickness: float | None = None
    process: str | None = None
    notes: str = ""
    grain: str | None = None
    print_rotation: tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.grain not in GRAIN_AXES:
            raise ValueError(f"part {self.name}: grain must be one of {GRAIN_AXES}, not {self.grain!r}")


GRAIN_AXES = (None, "x", "y")
"""The grain a part may declare: none, along its own X, or along its own Y."""


def as_parts(template_id: str, built: Any) -> list[Part]:
    """Normalise a build result (a shape, a workplane, a Part or a list of Parts) to a list of Parts."""
    if isinstance(built, Part):
        return [built]
    if isinstance(built, (list, tuple)):
        parts = [item if isinstance(item, Part) else Part(name=f"{template_id}_{i + 1}", shape=item)
                 for i, item in enumerate(built)]
        names = [p.name for p in parts]
        if len(set(names)) != len(names):
            raise ValueError(f"part names must be unique, got {names}")
        return parts
    return [Part(name=template_id, shape=built)]


def solid_of(shape: Any) -> Any:
    """The CadQuery ``Shape`` behind a workplane or a shape."""
    if hasattr(shape, "vals") and hasattr(shape, "objects"):  # a cq.Workplane
        values = shape.vals()
        if len(values) == 1:
            return values[0]
        import cadquery as cq

        return cq.Compound.makeCompound(values)
    return shape
