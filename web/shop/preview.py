"""Previews: a configuration's GLB (and STL) through the core's cache, built in the web process.

The preview is rendered with the order's export settings and with STL beside the GLB, in
one build: the quote that follows (``web.orders.quotes``, STL) is then a cache hit, and the mesh
the customer turns in the browser is the one that will be made. A configuration seen
before is answered from the cache without loading the CAD kernel. Builds in this process
share the quotes' lock, because the kernel is not thread-safe.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import parametric

from ..orders.generation import Generation
from ..orders.placing import ItemRequest
from ..orders.quotes import _kernel as kernel_lock  # one lock for every kernel build in this process

PREVIEW_FORMATS = ("glb", "stl")
CACHE_KEY = re.compile(r"^[0-9a-f]{64}$")


def render_preview(item: ItemRequest, generation: Generation) -> parametric.Manifest:
    """The item's preview files (from the cache when they are there; built once otherwise)."""

    def render() -> parametric.Manifest:
        return parametric.render(item.template.id, item.params, formats=PREVIEW_FORMATS, material=item.material,
                                 settings=generation.settings, cache=generation.cache,
                                 timeout=generation.render_timeout)

    if generation.cache.lookup(generation.key(item.template, item.params), PREVIEW_FORMATS) is not None:
        return render()
    with kernel_lock:
        return render()


def preview_file(generation: Generation, key: str, filename: str) -> tuple[bytes, str] | None:
    """The bytes and SHA-256 of a GLB in the cache entry ``key``, if the entry lists it and the file is the
    one recorded (checked here, as it is handed out); ``None`` otherwise. A damaged file makes its entry
    bad: it is removed, and the next preview of that configuration builds it again."""
    if not CACHE_KEY.match(key):
        return None
    entry = generation.cache.lookup(key, ("glb",))
    if entry is None:
        return None
    record = next((r for r in entry["files"] if r["format"] == "glb" and r["filename"] == filename), None)
    if record is None:
        return None
    try:
        data = (Path(entry["folder"]) / filename).read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != record.get("bytes", len(data)) or digest != record.get("sha256", digest):
        generation.cache.discard(key, f"{filename} is {len(data)} bytes with SHA-256 {digest}; its record says "
                                      f"{record.get('bytes')} bytes, {record.get('sha256')}")
        return None
    return data, digest
