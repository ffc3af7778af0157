"""``render``: a template id and customer parameters in, verified manufacturing files out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .cache import Cache, cache_key, file_record, output_root
from .errors import FieldError, GeometryError, Problems, ValidationError
from .export import DEFAULT_FORMATS, FORMATS, ExportSettings
from .files import atomic_write_json, place
from .manifest import Manifest
from .materials import get_material
from .registry import Template, get_template

Envelope = tuple[float, float, float]


def parse_formats(formats: Iterable[str] | str | None, template: Template) -> tuple[str, ...]:
    """Requested formats in table order, or a validation error naming the allowed ones."""
    if formats is None:
        return DEFAULT_FORMATS
    requested = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    requested = [f for f in requested if f]
    unknown = [f for f in requested if f not in FORMATS]
    if unknown or not requested:
        raise ValidationError([FieldError("formats", f"unknown format(s) {', '.join(unknown) or '(none given)'}; "
                                          f"allowed: {', '.join(FORMATS)}")])
    if "dxf" in requested and "cnc" not in template.process:
        raise ValidationError([FieldError("formats", f"dxf is for flat CNC sheet parts; {template.id} is made by "
                                          f"{', '.join(template.process)} only; allowed: "
                                          f"{', '.join(f for f in FORMATS if f != 'dxf')}")])
    return tuple(f for f in FORMATS if f in requested)


def fits_envelope(sizes: Mapping[str, Sequence[float]], envelope: Envelope | None) -> dict[str, Any] | None:
    """Whether every part fits a machine envelope (x, y, z mm), lying as modelled or turned a quarter turn
    about Z (:func:`parametric.routing.fits`, the rule the machines use)."""
    if envelope is None:
        return None
    from .routing import fits

    verdicts = {name: fits(size, envelope)[0] for name, size in sizes.items()}
    too_big = [name for name, fits_ in verdicts.items() if not fits_]
    reason = ""
    if too_big:
        described = "; ".join(f"{name} is {' x '.join(f'{v:g}' for v in sizes[name])} mm" for name in too_big)
        reason = f"{described}; the envelope is {' x '.join(f'{v:g}' for v in envelope)} mm"
    return {"envelope_mm": list(envelope), "fits": not too_big, "parts": verdicts, "reason": reason}


def _build(template: Template, params: Any, canonical: dict[str, Any], formats: tuple[str, ...],
           settings: ExportSettings, folder: Path, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Build, check and export on a cache miss; returns the entry to publish. Imports the CAD kernel."""
    from .export import Product
    from .geometry import assembly_bounds, failed_checks, measure
    from .part import as_parts

    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        parts = as_parts(template.id, template.build(params))
    except Exception as error:  # the kernel raises bare Standard_Failure types with no cause
        reason = str(error) or type(error).__name__
        raise GeometryError(template.id, canonical, f"the geometry kernel failed: {reason}") from error
    timings["build_s"] = time.perf_counter() - started

    started = time.perf_counter()
    try:
        geometries = [measure(part, settings.tolerance, settings.angular_tolerance) for part in parts]
    except Exception as error:
        raise GeometryError(template.id, canonical, f"tessellation failed: {error}") from error
    timings["tessellate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    single = template.process[0] if len(template.process) == 1 else None
    for geometry in geometries:
        if (geometry.part.process or single) == "fdm":
            geometry.pose_for_printing()
    timings["orient_s"] = time.perf_counter() - started
    problems = [reason for geometry in geometries for reason in failed_checks(geometry)]
    if problems:
        raise GeometryError(template.id, canonical, "; ".join(problems))

    product = Product(template.id, geometries, settings)
    done = set(previous["formats"]) if previous else set()
    files = list(previous["files"]) if previous else []
    for format_ in formats:
        if format_ in done:
            continue
        started = time.perf_counter()
        try:
            written = FORMATS[format_](product, folder)
        except Exception as error:
            raise GeometryError(template.id, canonical, f"{format_} export failed: {error}") from error
        timings[f"export_{format_}_s"] = time.perf_counter() - started
        files = [f for f in files if f["format"] != format_]
        files.extend(file_record(folder, w.format, w.part, w.filename) for w in written)
        done.add(format_)

    bounds = assembly_bounds(geometries)
    return {
        "key": folder.name, "template": template.id, "version": template.version, "params": canonical,
        "export_settings": settings.as_dict(), "formats": [f for f in FORMATS if f in done], "files": files,
        "parts": [{"name": g.part.name, "quantity": len(g.placements), "flat": g.part.flat,
                   "thickness_mm": g.part.thickness, "process": g.part.process, "notes": g.part.notes,
                   "grain": g.part.grain,
                   "size_mm": list(g.size_mm), "volume_mm3": round(g.volume_mm3, 3), "checks": g.checks,
                   **({"print": g.print_pose.as_dict()} if g.print_pose else {})}
                  for g in geometries],
        "bbox_mm": [round(float(v), 4) for v in bounds[1] - bounds[0]],
        "bounds_mm": [[round(float(v), 4) for v in row] for row in bounds],
        "volume_mm3": round(sum(g.volume_mm3 * len(g.placements) for g in geometries), 3),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def render(template_id: str, params: Mapping[str, Any] | None = None, out_dir: str | Path | None = None,
           formats: Iterable[str] | str | None = None, *, preset: str | None = None, material: str | None = None,
           envelope: Envelope | None = None, settings: ExportSettings | None = None,
           cache: Cache | None = None) -> Manifest:
    """Validate, build (or take from the cache), check and export one configuration.

    ``params`` may use units (``{"width": "32in"}``). With ``out_dir`` the files and a
    ``manifest.json`` are placed there; without it the manifest points into the cache.
    Raises :class:`ValidationError` for bad input and :class:`GeometryError` when the
    kernel fails or builds something unfit (nothing is written then).
    """
    started = time.perf_counter()
    template = get_template(template_id)
    problems = Problems()
    validated = problems.check(template.resolve, params, preset)
    material_id = problems.check(template.check_material, material, preset)
    wanted = problems.check(parse_formats, formats, template)
    if envelope is not None and (len(envelope) != 3 or any(float(v) <= 0 for v in envelope)):
        problems.append(FieldError("envelope", "three positive sizes in mm: x, y, z"))
    if problems or validated is None or material_id is None or wanted is None:
        raise ValidationError(problems)
    settings = settings or ExportSettings()
    cache = cache or Cache()
    canonical = validated.canonical()
    key = cache_key(template.id, template.version, canonical, settings.as_dict())

    entry = cache.lookup(key, wanted)
    hit = entry is not None
    if entry is None:
        with cache.locked(key) as folder:
            entry = cache.lookup(key, wanted)  # another process may have built it while we waited
            hit = entry is not None
            if entry is None:
                previous = cache.lookup(key, ())
                # Build from the canonical values, so the geometry is exactly what the key names
                # (two requests differing below the rounding share a key and must share geometry).
                exact = template.validate(canonical)
                entry = _build(template, exact, canonical, wanted, settings, folder, previous)
                cache.commit(key, entry)
                entry["folder"] = str(folder)
    return _manifest(template, entry, wanted, material_id, envelope, hit, out_dir, started)


def _manifest(template: Template, entry: dict[str, Any], wanted: tuple[str, ...], material_id: str,
              envelope: Envelope | None, hit: bool, out_dir: str | Path | None, started: float) -> Manifest:
    material = get_material(material_id)
    by_process = template.materials_by_process(material_id)
    source = Path(entry["folder"])
    files = [record for record in entry["files"] if record["format"] in wanted]
    parts, mass_g = [], 0.0
    for part in entry["parts"]:
        # a part made by another process than the chosen material's takes that process's material
        part_material = get_material(by_process.get(part.get("process") or material.process, material_id))
        parts.append({**part, "material": part_material.id,
                      "mass_g": round(part_material.mass_g(part["volume_mm3"]), 2)})
        mass_g += part_material.mass_g(part["volume_mm3"]) * part["quantity"]
    fit = fits_envelope({p["name"]: p["size_mm"] for p in parts}, envelope)
    checks = {
        "valid_solid": all(p["checks"]["valid_solid"] for p in parts),
        "watertight": all(p["checks"]["watertight"] for p in parts),
        "manifold": all(p["checks"]["manifold"] for p in parts),
        "fits_envelope": fit,
    }
    directory = Path(out_dir).resolve() if out_dir is not None else source
    if out_dir is not None:
        for record in files:
            place(source / record["filename"], directory / record["filename"])
    timings = dict(entry["timings"]) if not hit else {"cache_lookup_s": round(time.perf_counter() - started, 5)}
    timings["total_s"] = round(time.perf_counter() - started, 5)
    manifest = Manifest(
        template=template.id, version=template.version, name=template.name, params=entry["params"],
        material={"id": material.id, "name": material.name, "density_g_cm3": material.density_g_cm3},
        cache_key=entry["key"], cache_hit=hit, directory=directory, files=files, parts=parts, checks=checks,
        bbox_mm=entry["bbox_mm"], volume_mm3=entry["volume_mm3"],
        mass_g=round(mass_g, 2), timings=timings,
        extra={"export_settings": entry["export_settings"], "bounds_mm": entry["bounds_mm"]},
    )
    if out_dir is not None:
        manifest.path = atomic_write_json(directory / "manifest.json", manifest.to_dict())
    return manifest


def default_out_dir(template_id: str, key: str) -> Path:
    """Where the CLI puts a render when no ``--out`` is given: ``output/<template>/<key prefix>``."""
    return output_root() / template_id / key[:12]
