"""An order item's files as the customer saves them: names that say order, item, product, part and copies, and
one "download all" archive per item.

Every file is served from the order's own copy only after its size and SHA-256 match the record made when it was
generated (:func:`verified_file`); the archive is built from the same checked handles, written beside the item's
files under a temporary name and renamed into place, so a reader never sees half an archive and a changed record
gives a new archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from parametric import FieldError, ValidationError

from ..models import Artifact, Order, OrderItem

ARCHIVE_PREFIX = ".download-all-"
"""Archives are kept beside the item's files as ``.download-all-<digest>.zip`` (hidden: never an artifact)."""


class CorruptFile(Exception):
    """An order's file no longer matches its record (size or SHA-256): it is never served under that record."""

    def __init__(self, path: Path, artifact: Artifact):
        super().__init__(f"{path} no longer matches its record ({artifact.bytes} bytes, {artifact.sha256})")
        self.path = path


def safe_piece(text: str) -> str:
    """``text`` as a piece of a file name: letters, digits, ``.``, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "file"


def item_stem(order: Order, item: OrderItem) -> str:
    """``order-1a2b3c4d_item-1_wall_shelf``: the order (its first 8 characters, as every page shows it), the item's
    position in the order and the product."""
    return f"order-{order.id[:8]}_item-{item.position}_{safe_piece(item.template)}"


def saved_name(order: Order, item: OrderItem, artifact: Artifact, copies: dict[str, int]) -> str:
    """The name a file is saved under: ``order-1a2b3c4d_item-1_wall_shelf_bracket_x4.stl`` (the part, and how
    many copies of it the item needs: the part's copies in one product times the quantity ordered)."""
    if artifact.format == "manifest":
        return f"{item_stem(order, item)}_manifest.json"
    suffix = artifact.filename.rpartition(".")[2] if "." in artifact.filename else artifact.format
    part = artifact.part or artifact.filename.rpartition(".")[0]
    count = copies.get(part)
    times = f"_x{count}" if count else ""
    return f"{item_stem(order, item)}_{safe_piece(part)}{times}.{safe_piece(suffix)}"


def archive_name(order: Order, item: OrderItem) -> str:
    return f"{item_stem(order, item)}.zip"


def verified_file(path: Path, size: int, sha256: str) -> IO[bytes] | None:
    """``path`` opened for reading if its bytes are the recorded ones (size, then SHA-256), else ``None``.
    The handle that was checked is the one served, so what is sent is what was checked."""
    handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, which closes it
    try:
        if os.fstat(handle.fileno()).st_size != size:
            handle.close()
            return None
        digest = hashlib.sha256()
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            handle.close()
            return None
        handle.seek(0)
        return handle
    except BaseException:
        handle.close()
        raise


def artifact_path(output_folder: str | Path, artifact: Artifact) -> Path | None:
    """Where the artifact is, if that is inside the output folder and a file."""
    root = Path(output_folder).resolve()
    path = (root / artifact.path).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def open_checked(output_folder: str | Path, artifact: Artifact) -> IO[bytes] | None:
    """The artifact opened after its check; ``None`` when it is missing; :class:`CorruptFile` when it changed."""
    path = artifact_path(output_folder, artifact)
    if path is None:
        return None
    handle = verified_file(path, artifact.bytes, artifact.sha256)
    if handle is None:
        raise CorruptFile(path, artifact)
    return handle


def manifest_parts(output_folder: str | Path, item: OrderItem) -> list[dict[str, Any]]:
    """The item's parts as its checked manifest lists them (name, quantity per product, process, material)."""
    record = next((a for a in item.artifacts if a.format == "manifest"), None)
    if record is None:
        return []
    try:
        handle = open_checked(output_folder, record)
    except CorruptFile:
        return []
    if handle is None:
        return []
    with handle:
        try:
            manifest = json.loads(handle.read())
        except ValueError:
            return []
    return [part for part in manifest.get("parts", []) if isinstance(part, dict) and "name" in part]


def part_copies(output_folder: str | Path, item: OrderItem) -> dict[str, int]:
    """How many copies of each part the item needs (per product, from its checked manifest, times the quantity)."""
    return {str(part["name"]): int(part.get("quantity", 1)) * item.quantity
            for part in manifest_parts(output_folder, item)}


def printed_material(item: OrderItem, part: dict[str, Any]) -> str:
    """The filament a printed part of ``item`` is made of, as its manufacturing job is (``web.jobs.part_material``):
    the manifest's, else the template's printing material when the item's is a sheet's (a wall shelf in oak has
    PLA brackets)."""
    from parametric import get_template

    from ..jobs import part_material

    return part_material(get_template(item.template), part, item.material, "fdm")


def printed_parts(output_folder: str | Path, item: OrderItem) -> list[tuple[dict[str, Any], Artifact]]:
    """The item's printed parts, each with its STL (in its print pose)."""
    from parametric.materials import get_material

    def printed(part: dict[str, Any]) -> bool:  # a part without its own process is made as its material is
        if part.get("process"):
            return part["process"] == "fdm"
        try:
            return get_material(str(part.get("material") or item.material)).process == "fdm"
        except (KeyError, ValueError, ValidationError):
            return False

    stls = {a.part: a for a in item.artifacts if a.format == "stl"}
    return [(part, stls[part["name"]]) for part in manifest_parts(output_folder, item)
            if printed(part) and part["name"] in stls]


@dataclass(frozen=True)
class PlatesPlan:
    """What the plates of an item for one printer are made from: the printer, the printed parts with their STLs,
    the item's folder, a key of it all (printer and its options, quantity, parts and their SHA-256) and the stem
    of the saved names. Worked out without slicing anything (:func:`plan_home_plates`)."""

    home: Any
    parts: list[tuple[dict[str, Any], Artifact]]
    folder: Path
    key: str
    stem: str

    @property
    def target(self) -> Path:
        return self.folder / f".plates-{self.home.id}-{self.key}"


def plan_home_plates(output_folder: str | Path, order: Order, item: OrderItem, printer_id: str) -> PlatesPlan | None:
    """The plan of the item's plates for the customer's printer ``printer_id`` (a ``ValidationError`` names the
    printers offered); ``None`` when the item has no printed parts. Reads the manifest only: no slicing."""
    from parametric.fdm.vendors import get_home_printer

    home = get_home_printer(printer_id)
    parts = printed_parts(output_folder, item)
    if not parts:
        return None
    folder = artifact_path(output_folder, parts[0][1])
    if folder is None:
        return None
    key = hashlib.sha256(json.dumps([home.id, sorted(home.options.items()), item.quantity,
                                     [(p["name"], p.get("quantity"), printed_material(item, p), a.sha256)
                                      for p, a in parts]],
                                    sort_keys=True).encode()).hexdigest()[:20]
    return PlatesPlan(home, parts, folder.parent, key, f"{item_stem(order, item)}_{safe_piece(home.id)}")


def check_plate_sources(output_folder: str | Path, plan: PlatesPlan) -> None:
    """Every STL the plates are made from matches its record (:class:`CorruptFile` if one changed or is gone):
    checked before a worker is asked, so a changed file is our fault answered at once, not a build queued to fail."""
    for _, artifact in plan.parts:
        handle = open_checked(output_folder, artifact)
        if handle is None:
            raise CorruptFile(plan.folder / artifact.filename, artifact)
        handle.close()


def built_home_plates(plan: PlatesPlan) -> Archive | None:
    """The plates of ``plan`` if they were made (one plate as its 3MF, several as a zip), else ``None``."""
    if not plan.target.is_dir():
        return None
    plates = sorted(plan.target.glob("*.3mf"), key=lambda p: int(p.stem.split("_plate-")[1].split("_")[0]))
    if not plates:
        return None
    if len(plates) == 1:
        return Archive(plates[0], plates[0].name, plates[0].stat().st_size, plan.key)
    bundle = plan.target / "plates.zip"
    if not bundle.is_file():
        handle, temporary = tempfile.mkstemp(prefix=".plates-", suffix=".part", dir=plan.target)
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            for plate in plates:
                archive.write(plate, f"{plan.stem}/{plate.name}")
        os.replace(temporary, bundle)
    return Archive(bundle, f"{plan.stem}_plates.zip", bundle.stat().st_size, plan.key)


def build_home_plates(output_folder: str | Path, order: Order, item: OrderItem, printer_id: str) -> Archive | None:
    """Print-ready plates of the item's printed parts for the customer's printer ``printer_id`` (a
    ``ValidationError`` names the printers offered, or says which parts do not fit on it): one PrusaSlicer project
    3MF per plate, every copy the item needs, named by part and copy; one plate is served as its 3MF, several as a
    zip. ``None`` when the item has no printed parts. Made once per printer and set of files (the STLs are checked
    against their records as they are read), in a temporary folder renamed into place. PrusaSlicer runs here
    (about a second a plate): a worker calls this (``web.orders.plates``), never a request."""
    import trimesh

    from parametric.fdm.plates import PlateSource
    from parametric.fdm.projects import home_plates

    plan = plan_home_plates(output_folder, order, item, printer_id)
    if plan is None:
        return None
    home, folder, target, stem = plan.home, plan.folder, plan.target, plan.stem
    if not target.is_dir():
        scratch = Path(tempfile.mkdtemp(prefix=f".plates-{home.id}-", suffix=".part", dir=folder))
        try:
            by_material: dict[str, list[PlateSource]] = {}
            for part, artifact in plan.parts:
                handle = open_checked(output_folder, artifact)
                if handle is None:
                    raise CorruptFile(folder / artifact.filename, artifact)
                with handle:
                    mesh = trimesh.load(handle, file_type="stl", force="mesh")
                material = printed_material(item, part)
                copies = int(part.get("quantity", 1)) * item.quantity
                by_material.setdefault(material, []).append(
                    PlateSource(f"{item.template}:{part['name']}", str(part["name"]), mesh, copies, material))
            number = 0
            for material, sources in by_material.items():
                made = home_plates(sources, home, scratch / material)
                if made.unplaced:
                    reasons = "; ".join(sorted({str(u["reason"]) for u in made.unplaced}))
                    raise ValidationError([FieldError("printer", f"some parts do not fit on the {home.name}: "
                                                                 f"{reasons}")])
                for path in made.paths:
                    number += 1
                    os.replace(path, scratch / f"{stem}_plate-{number}_{safe_piece(material)}.3mf")
                shutil.rmtree(scratch / material)
            os.replace(scratch, target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        for stale in folder.glob(f".plates-{home.id}-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    return built_home_plates(plan)


@dataclass(frozen=True)
class Archive:
    """A built archive: where it is, the name it is saved under, its size and its ETag (the files' digest)."""

    path: Path
    name: str
    size: int
    etag: str


def _digest(artifacts: Iterable[Artifact], names: dict[int, str]) -> str:
    listing = sorted((names[a.id], a.sha256, a.bytes) for a in artifacts)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:20]


def build_archive(output_folder: str | Path, order: Order, item: OrderItem) -> Archive | None:
    """The item's "download all" zip (every file and the manifest, under :func:`saved_name`, in one folder named by
    :func:`item_stem`); ``None`` when the item has no files. Built once per set of files: its name carries a digest
    of the files' names and SHA-256, and it is written to a temporary file and renamed into place. Every file is
    checked against its record as it is copied in (:class:`CorruptFile` if one changed)."""
    artifacts = [a for a in item.artifacts]
    paths = {a.id: artifact_path(output_folder, a) for a in artifacts}
    if not artifacts or any(path is None for path in paths.values()):
        return None
    copies = part_copies(output_folder, item)
    names = {a.id: saved_name(order, item, a, copies) for a in artifacts}
    folder = paths[artifacts[0].id].parent  # type: ignore[union-attr]
    target = folder / f"{ARCHIVE_PREFIX}{_digest(artifacts, names)}.zip"
    if not target.is_file():
        stem = item_stem(order, item)
        handle, temporary = tempfile.mkstemp(prefix=".download-all-", suffix=".part", dir=folder)
        try:
            with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                for artifact in artifacts:
                    source = open_checked(output_folder, artifact)
                    if source is None:
                        raise CorruptFile(paths[artifact.id] or Path(artifact.path), artifact)
                    with source, archive.open(f"{stem}/{names[artifact.id]}", "w") as entry:
                        shutil.copyfileobj(source, entry, 1024 * 1024)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        for stale in folder.glob(f"{ARCHIVE_PREFIX}*.zip"):
            if stale != target:
                stale.unlink(missing_ok=True)
    return Archive(target, archive_name(order, item), target.stat().st_size, target.stem[len(ARCHIVE_PREFIX):])
