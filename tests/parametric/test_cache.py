"""The render cache under damage and faults: read-only, checked entries; copies that a cache change cannot
alter; no partial entries after a full disk; a size limit with least-recently-used eviction; time limits."""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import parametric
from parametric.cache import Cache, parse_size
from parametric.deadline import kernel_process_pid
from parametric.errors import InfrastructureError, TimeoutFault, infrastructure_fault
from parametric.files import copy_file
from parametric.registry import _REGISTRY, Template, register
from parametric.schema import Mm, TemplateParams, length, number

_sizes = itertools.count(1)


class CubeParams(TemplateParams):
    size: Mm = length(20, ge=5, le=200, description="Edge length of the cube.")
    pause_s: float = number(0, ge=0, le=120, unit="s", description="The build waits this long first (time limits).")
    fillet: Mm = length(0, ge=0, le=200, description="Rounds every edge; as large as the edge, it fails in OCCT.")


class Cube(Template):
    """A real template, small enough that a test builds it in a few milliseconds."""

    id, version, name = "test_cache_cube", "1.0.0", "Cube (test)"
    family, process, materials = "home", ("fdm",), ("pla",)
    description = "A cube."
    Params = CubeParams
    presets: dict[str, Any] = {}

    def build(self, p: Any) -> Any:
        import cadquery as cq

        time.sleep(p.pause_s)
        box = cq.Workplane().box(p.size, p.size, p.size)
        return box.edges().fillet(p.fillet) if p.fillet else box


@pytest.fixture(autouse=True)
def cube() -> Iterator[str]:
    register(Cube)
    yield Cube.id
    _REGISTRY.pop(Cube.id, None)


def unique_size() -> float:
    return 20 + next(_sizes) + 0.25


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_entries_are_read_only_and_record_each_files_size_and_sha256(tmp_path):
    cache = Cache(tmp_path / "cache")
    manifest = parametric.render(Cube.id, {"size": unique_size()}, formats="stl,step", cache=cache)
    folder = cache.folder(manifest.cache_key)
    assert manifest.directory == folder
    for record in manifest.files:
        path = folder / record["filename"]
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
        assert (path.stat().st_size, digest(path)) == (record["bytes"], record["sha256"])
    assert not (folder / "entry.json").stat().st_mode & stat.S_IWUSR
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".build-")) == []


def test_a_delivered_copy_is_not_changed_by_damage_to_the_cache_and_the_entry_is_rebuilt(tmp_path):
    cache = Cache(tmp_path / "cache")
    size = unique_size()
    first = parametric.render(Cube.id, {"size": size}, out_dir=tmp_path / "first", formats="stl", cache=cache)
    delivered = first.file("stl")
    original = (delivered.read_bytes(), first.files[0]["sha256"])
    cached = cache.folder(first.cache_key) / first.files[0]["filename"]
    assert os.stat(cached).st_ino != os.stat(delivered).st_ino  # a copy, never a hard link
    with open(cached, "r+b") as damaged:  # root writes through the read-only mode, as a faulty disk would
        damaged.truncate(100)

    assert delivered.read_bytes() == original[0] and digest(delivered) == original[1]
    assert cache.lookup(first.cache_key, ("stl",)) is None  # the size no longer matches: the entry is bad
    second = parametric.render(Cube.id, {"size": size}, out_dir=tmp_path / "second", formats="stl", cache=cache)
    assert not second.cache_hit
    assert digest(second.file("stl")) == second.files[0]["sha256"] == original[1]
    assert second.file("stl").stat().st_size == second.files[0]["bytes"] == len(original[0])


def test_a_same_size_change_is_caught_by_the_sha256_before_files_are_handed_out(tmp_path):
    cache = Cache(tmp_path / "cache")
    size = unique_size()
    first = parametric.render(Cube.id, {"size": size}, formats="stl", cache=cache)
    cached = cache.folder(first.cache_key) / first.files[0]["filename"]
    good = cached.read_bytes()
    with open(cached, "r+b") as damaged:
        damaged.seek(len(good) // 2)
        damaged.write(bytes([good[len(good) // 2] ^ 0xFF]))
    assert cache.lookup(first.cache_key, ("stl",)) is not None  # the size alone cannot tell
    copy = parametric.render(Cube.id, {"size": size}, out_dir=tmp_path / "copy", formats="stl", cache=cache)
    assert not copy.cache_hit and copy.file("stl").read_bytes() == good
    with open(cache.folder(first.cache_key) / first.files[0]["filename"], "r+b") as damaged:
        damaged.write(b"X")
    checked = parametric.render(Cube.id, {"size": size}, formats="stl", cache=cache, verify=True)
    assert not checked.cache_hit and checked.file("stl").read_bytes() == good


def test_a_full_disk_is_a_fault_of_ours_leaves_no_partial_entry_and_the_render_works_once_freed(small_disk):
    cache = Cache(small_disk.path / "cache")
    small_disk.fill()
    size = unique_size()
    with pytest.raises(InfrastructureError) as caught:
        parametric.render(Cube.id, {"size": size}, formats="step,stl,3mf", cache=cache)
    assert caught.value.kind == "disk_full" and not caught.value.counts_as_attempt
    assert not isinstance(caught.value, parametric.GeometryError)
    left = [p for p in small_disk.used_paths() if not p.endswith(".lock")]
    assert all(len(Path(p).parts) <= 2 and ".build-" not in p for p in left), left  # folders of keys, no entry
    small_disk.free()
    manifest = parametric.render(Cube.id, {"size": size}, formats="step,stl,3mf", cache=cache)
    assert not manifest.cache_hit and {f["format"] for f in manifest.files} == {"step", "stl", "3mf"}


def test_a_disk_that_fills_up_during_the_export_leaves_no_partial_entry(small_disk):
    """The disk fills part-way through one build's files (300 KB free): whichever write hits the limit (or the
    free-space check after the exports, for writers that do not report a short write), the build is a full
    disk, its staging folder goes and no entry is published."""
    cache = Cache(small_disk.path / "cache")
    small_disk.fill()
    small_disk._filler.write_bytes(small_disk._filler.read_bytes()[: -300 * 1024])  # room for part of a build
    with pytest.raises(InfrastructureError) as caught:
        parametric.render(Cube.id, {"size": unique_size()}, formats="step,stl,3mf,glb", cache=cache)
    assert caught.value.kind == "disk_full"
    assert not [p for p in small_disk.used_paths()
                if not p.endswith(".lock") and (".build-" in p or len(Path(p).parts) > 2)]


def test_a_read_only_cache_folder_is_a_fault_of_ours(small_disk):
    cache = Cache(small_disk.path / "cache")
    cache.root.mkdir()
    small_disk.read_only()
    with pytest.raises(InfrastructureError) as caught:
        parametric.render(Cube.id, {"size": unique_size()}, formats="stl", cache=cache)
    assert caught.value.kind == "read_only"


def test_infrastructure_faults_are_told_apart_from_the_customers_errors():
    assert infrastructure_fault(OSError(28, "No space left on device", "/srv/x")).kind == "disk_full"
    assert infrastructure_fault(OSError(30, "Read-only file system")).kind == "read_only"
    wrapped = RuntimeError("export failed")
    wrapped.__cause__ = OSError(122, "Disk quota exceeded")
    assert infrastructure_fault(wrapped).kind == "disk_full"
    assert infrastructure_fault(parametric.GeometryError("t", {}, "fillet too large")) is None
    assert infrastructure_fault(ValueError("bad")) is None


def test_sweep_removes_what_interrupted_builds_left_but_not_a_build_in_progress(tmp_path):
    cache = Cache(tmp_path / "cache")
    good = parametric.render(Cube.id, {"size": unique_size()}, formats="stl", cache=cache)
    dead_key, busy_key, legacy_key = "a" * 64, "b" * 64, "c" * 64
    for name in (f".build-{dead_key}-123-beef", f".build-{busy_key}-456-cafe", legacy_key):
        folder = cache.root / name[-64:][:2] if name == legacy_key else cache.root / name[8:10]
        (folder / name).mkdir(parents=True)
        (folder / name / "part.stl").write_bytes(b"half a file")
    with cache.locked(busy_key):  # someone is building this one right now
        removed = cache.sweep()
    assert sorted(p.name for p in removed) == sorted([f".build-{dead_key}-123-beef", legacy_key])
    assert (cache.root / "bb" / f".build-{busy_key}-456-cafe").is_dir()
    assert cache.lookup(good.cache_key, ("stl",)) is not None


def test_eviction_removes_the_least_recently_used_but_never_a_protected_or_recent_entry(tmp_path):
    protected: set[str] = set()
    cache = Cache(tmp_path / "cache", min_age_s=3600, protected=lambda: protected)
    keys = [parametric.render(Cube.id, {"size": unique_size()}, formats="stl", cache=cache).cache_key
            for _ in range(4)]
    now = time.time()
    for age, key in zip((4000, 5000, 6000, 60), keys, strict=True):  # keys[2] is the least recently used
        os.utime(cache.folder(key), (now - age, now - age))
    protected.add(keys[2])
    sizes = {u.key: u.bytes for u in cache.usage()}
    limit = sum(sizes.values()) - 1  # one entry has to go
    assert cache.evict(limit) == [keys[1]]  # the oldest not protected
    assert cache.evict(sizes[keys[3]]) == [keys[0]]  # the recent one (60 s) and the protected one stay
    assert {u.key for u in cache.usage()} == {keys[2], keys[3]}
    assert cache.lookup(keys[2], ("stl",)) is not None


def test_a_hit_marks_the_entry_used(tmp_path):
    cache = Cache(tmp_path / "cache")
    size = unique_size()
    key = parametric.render(Cube.id, {"size": size}, formats="stl", cache=cache).cache_key
    os.utime(cache.folder(key), (1_000_000, 1_000_000))
    assert parametric.render(Cube.id, {"size": size}, formats="stl", cache=cache).cache_hit
    assert cache.folder(key).stat().st_mtime > time.time() - 60


def test_the_cache_limit_is_configured_in_bytes_or_with_a_unit(monkeypatch):
    assert parse_size("20GB") == 20 * 1000**3 and parse_size("512 MiB") == 512 * 1024**2
    assert parse_size(1234) == 1234 and parse_size("0") is None and parse_size(None) is None
    monkeypatch.setenv("PARAMETRIC_CACHE_MAX_BYTES", "1.5GB")
    assert Cache().max_bytes == 1_500_000_000
    with pytest.raises(ValueError):
        parse_size("a lot")


def test_copies_are_files_of_their_own(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(300_000))
    how = copy_file(source, tmp_path / "copy.bin")
    assert how in ("reflink", "copy_file_range", "copy")
    assert os.stat(source).st_ino != os.stat(tmp_path / "copy.bin").st_ino
    source.write_bytes(b"changed")
    assert (tmp_path / "copy.bin").stat().st_size == 300_000


def test_a_render_over_its_time_limit_is_stopped_and_leaves_nothing(tmp_path):
    cache = Cache(tmp_path / "cache")
    parametric.render(Cube.id, {"size": unique_size()}, formats="stl", cache=cache, timeout=60)
    kernel = kernel_process_pid()
    assert kernel is not None and kernel != os.getpid()  # builds run in a process of their own
    started = time.monotonic()
    with pytest.raises(TimeoutFault) as caught:
        parametric.render(Cube.id, {"size": unique_size(), "pause_s": 30}, formats="stl", cache=cache, timeout=1.0)
    assert time.monotonic() - started < 10
    assert caught.value.kind == "timeout" and caught.value.counts_as_attempt
    assert not [p for p in cache.root.rglob("*") if p.is_dir() and ".build-" in p.name]
    assert len(cache.usage()) == 1  # the warm-up render's entry only
    assert not Path(f"/proc/{kernel}").exists()  # the kernel process was killed and reaped, no zombie left
    with open(tmp_path / "opened-since", "w") as opened:  # may take a number the dead process's pipes had
        again = parametric.render(Cube.id, {"size": unique_size()}, formats="stl", cache=cache, timeout=60)
        assert not again.cache_hit and kernel_process_pid() not in (None, kernel)  # a new one for the next render
        os.fstat(opened.fileno())  # still open: the old pipes were closed once, not again under reused numbers


def test_a_kernel_error_comes_back_from_the_child_whole(tmp_path):
    with pytest.raises(parametric.GeometryError) as caught:
        parametric.render(Cube.id, {"size": 12, "fillet": 12}, formats="stl", cache=Cache(tmp_path / "cache"))
    assert caught.value.template == Cube.id


def test_a_bad_file_found_while_adding_a_format_is_rebuilt_not_reused(tmp_path):
    """The entry is checked whole (SHA-256 of every file) before its files are carried into a build of a new
    format; a bad one found then, under the key's lock, discards the entry without waiting on that lock."""
    cache = Cache(tmp_path / "cache")
    size = unique_size()
    first = parametric.render(Cube.id, {"size": size}, formats="stl,step", cache=cache)
    step = cache.folder(first.cache_key) / next(f["filename"] for f in first.files if f["format"] == "step")
    good = step.read_bytes()
    with open(step, "r+b") as damaged:
        damaged.seek(len(good) // 2)
        damaged.write(bytes([good[len(good) // 2] ^ 0xFF]))
    more = parametric.render(Cube.id, {"size": size}, formats="stl,3mf", cache=cache)
    assert not more.cache_hit
    entry = cache.lookup(first.cache_key, ("stl", "3mf"), verify=True)
    assert entry is not None and "step" not in entry["formats"]  # the bad STEP was not carried over
    again = parametric.render(Cube.id, {"size": size}, formats="step", cache=cache, verify=True)
    assert not again.cache_hit and again.file("step").stat().st_size == again.files[0]["bytes"]
