"""Previews: a configuration's GLB (and STL) through the core's cache, built in the web process.

The preview is rendered with the order's export settings and with STL beside the GLB, in
one build: the quote that follows (``web.orders.quotes``, STL) is then a cache hit, and the mesh
the customer turns in the browser is the one that will be made. A configuration seen
before is answered from the cache without loading the CAD kernel. Builds in this process
share the quotes' lock, because the kernel is not thread-safe.
"""

from __future__ import annotations

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
                                 settings=generation.settings, cache=generation.cache)

    if generation.cache.lookup(generation.key(item.template, item.params), PREVIEW_FORMATS) is not None:
        return render()
    with kernel_lock:
        return render()


def preview_file(generation: Generation, key: str, filename: str) -> Path | None:
    """The path of a GLB in the cache entry ``key``, if the entry lists it; ``None`` otherwise."""
    if not CACHE_KEY.match(key):
        return None
    entry = generation.cache.lookup(key, ("glb",))
    if entry is None:
        return None
    if not any(record["format"] == "glb" and record["filename"] == filename for record in entry["files"]):
        return None
    path = Path(entry["folder"]) / filename
    return path if path.is_file() else None
