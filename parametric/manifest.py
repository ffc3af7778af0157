"""The manifest: what was made, from what, where the files are, and what was checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Manifest:
    """The result of a render, written beside the files as ``manifest.json``."""

    template: str
    version: str
    name: str
    params: dict[str, Any]
    material: dict[str, Any]
    cache_key: str
    cache_hit: bool
    directory: Path
    files: list[dict[str, Any]]
    parts: list[dict[str, Any]]
    checks: dict[str, Any]
    bbox_mm: list[float]
    volume_mm3: float
    mass_g: float
    timings: dict[str, float]
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def file(self, format_: str, part: str | None = None) -> Path:
        """The path of the file of ``format_`` (for ``part``, or the first of that format)."""
        for record in self.files:
            if record["format"] == format_ and (part is None or record["part"] == part):
                return self.directory / record["filename"]
        raise KeyError(f"no {format_} file{f' for part {part}' if part else ''} in this manifest")

    def paths(self, format_: str) -> list[Path]:
        return [self.directory / r["filename"] for r in self.files if r["format"] == format_]

    def for_part(self, name: str) -> Manifest:
        """This manifest narrowed to one part (for a job that makes only that part): its files (and the
        assembly's), size, mass and material (a mixed product's parts may differ in material)."""
        from dataclasses import replace

        from .materials import get_material

        part = next((p for p in self.parts if p.get("name") == name), None)
        if part is None:
            raise KeyError(f"no part {name!r} in this manifest; parts: {', '.join(p['name'] for p in self.parts)}")
        material = get_material(part.get("material") or self.material["id"])
        copies = int(part.get("quantity", 1))
        return replace(self, parts=[part], files=[f for f in self.files if f.get("part") in (name, "assembly")],
                       material={"id": material.id, "name": material.name, "density_g_cm3": material.density_g_cm3},
                       bbox_mm=list(part["size_mm"]), volume_mm3=round(part["volume_mm3"] * copies, 3),
                       mass_g=round(material.mass_g(part["volume_mm3"]) * copies, 2), extra=dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template, "version": self.version, "name": self.name, "params": self.params,
            "material": self.material, "cache_key": self.cache_key, "cache_hit": self.cache_hit,
            "files": self.files, "parts": self.parts, "checks": self.checks, "bbox_mm": self.bbox_mm,
            "volume_mm3": self.volume_mm3, "mass_g": self.mass_g, "timings": self.timings, **self.extra,
        }
