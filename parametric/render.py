"""``render``: a template id and customer parameters in, verified manufacturing files out."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .cache import Cache, cache_key, file_record, output_root
from .deadline import render_timeout_s, within
from .errors import FieldError, GeometryError, InfrastructureError, Problems, ValidationError, infrastructure_fault
from .export import DEFAULT_FORMATS, FORMATS, ExportSettings
from .files import ContentMismatch, atomic_write_json, place
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


LOW_DISK_BYTES = 1 << 20
"""Free space below which files just exported are not trusted: the kernel's STEP writer does not report
a short write, so a disk that filled up during the export is taken as a full disk, not a finished file."""


def _disk_fault(folder: Path) -> InfrastructureError | None:
    """Whether ``folder``'s disk is full or read-only now (a small probe write tells, whatever the kernel said)."""
    try:
        stats = os.statvfs(folder)
        if stats.f_bavail * stats.f_frsize < LOW_DISK_BYTES:
            return InfrastructureError("disk_full", f"the disk of {folder} is full "
                                                    f"({stats.f_bavail * stats.f_frsize} bytes free)")
        probe = folder / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"\0" * 4096)
        finally:
            probe.unlink(missing_ok=True)
    except OSError as error:
        return infrastructure_fault(error) or InfrastructureError("io_error", f"{folder}: {error}")
    return None


def _build(template: Template, params: Any, canonical: dict[str, Any], formats: tuple[str, ...],
           settings: ExportSettings, folder: Path, previous: dict[str, Any] | None, key: str) -> dict[str, Any]:
    """Build, check and export on a cache miss into ``folder`` (a staging folder); returns the entry to publish.
    Imports the CAD kernel. A full or read-only disk is an :class:`InfrastructureError`, never a GeometryError."""
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
            fault = infrastructure_fault(error) or _disk_fault(folder)
            if fault is not None:
                raise fault from error
            raise GeometryError(template.id, canonical, f"{format_} export failed: {error}") from error
        timings[f"export_{format_}_s"] = time.perf_counter() - started
        files = [f for f in files if f["format"] != format_]
        files.extend(file_record(folder, w.format, w.part, w.filename) for w in written)
        done.add(format_)
    fault = _disk_fault(folder)
    if fault is not None:
        raise fault

    bounds = assembly_bounds(geometries)
    return {
        "key": key, "template": template.id, "version": template.version, "params": canonical,
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
           cache: Cache | None = None, verify: bool = False, timeout: float | None = None) -> Manifest:
    """Validate, build (or take from the cache), check and export one configuration.

    ``params`` may use units (``{"width": "32in"}``). With ``out_dir`` the files are copied there (each
    copy checked against its recorded size and SHA-256) with a ``manifest.json``; without it the manifest
    points into the cache, whose files are then checked by size, and by SHA-256 too with ``verify``. A
    cache entry that fails a check is rebuilt. ``timeout``: seconds the build and export may take (default
    ``$PARAMETRIC_RENDER_TIMEOUT_SECONDS`` or 600; 0 for no limit); the build then runs in this process's
    kernel process (:mod:`parametric.deadline`), which is killed when the limit passes.

    Raises :class:`ValidationError` for bad input, :class:`GeometryError` when the kernel fails or builds
    something unfit (nothing is written then) and :class:`InfrastructureError` for a fault of ours: a full
    or read-only disk, a timeout (a :class:`~parametric.errors.TimeoutFault`).
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
    limit = render_timeout_s() if timeout is None else (timeout if timeout > 0 else None)
    try:
        for attempt in (1, 2):
            entry, hit = _entry(template, cache, key, canonical, wanted, settings, verify and out_dir is None, limit)
            try:
                return _manifest(template, entry, wanted, material_id, envelope, hit, out_dir, started)
            except (ContentMismatch, FileNotFoundError) as error:  # changed under us: rebuild it, once
                if attempt == 2:
                    raise InfrastructureError("corrupt_cache", f"the render cache entry {key} does not match its "
                                                               f"record even after a rebuild: {error}") from error
                cache.discard(key, str(error))
    except OSError as error:
        raise (infrastructure_fault(error)
               or InfrastructureError("io_error", f"{type(error).__name__}: {error}")) from error
    raise AssertionError("unreachable")


def _entry(template: Template, cache: Cache, key: str, canonical: dict[str, Any], wanted: tuple[str, ...],
           settings: ExportSettings, verify: bool, timeout: float | None) -> tuple[dict[str, Any], bool]:
    """The checked cache entry for ``key`` with the ``wanted`` formats, built if needed; and whether it was a hit."""
    entry = cache.lookup(key, wanted, verify=verify)
    if entry is not None:
        return entry, True
    cache.require_space()
    with cache.locked(key) as folder:
        entry = cache.lookup(key, wanted, verify=verify)  # another process may have built it while we waited
        if entry is not None:
            return entry, True
        previous = cache.lookup(key, (), verify=True)
        # Build from the canonical values, so the geometry is exactly what the key names
        # (two requests differing below the rounding share a key and must share geometry).
        exact = template.validate(canonical)
        with cache.staging(key) as staging:
            for record in previous["files"] if previous else ():  # formats already made stay, unchanged
                os.link(folder / record["filename"], staging / record["filename"])
            built = within(timeout, f"rendering {template.id} {key[:12]}", _build, template, exact, canonical,
                           wanted, settings, staging, previous, key)
            final = cache.publish(key, staging, built)
    built["folder"] = str(final)
    return built, False


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
        for record in files:  # the receiver's own checked copies: a later change to the cache never reaches them
            place(source / record["filename"], directory / record["filename"], size=record.get("bytes"),
                  sha256=record.get("sha256"))
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
