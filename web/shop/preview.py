"""Previews: a configuration's GLB (and STL) through the core's cache, built by the workers.

The preview is rendered with the order's export settings and with STL beside the GLB, in
one build: the quote that follows (``web.orders.quotes``, STL) is then a cache hit, and the mesh
the customer turns in the browser is the one that will be made. A configuration seen
before is answered from the cache without loading the CAD kernel; a new one is a build the
workers make at the preview priority (:func:`build`, recorded by ``web.builds``), and the
request answers "preparing" (202, ``Retry-After``) until it is there. Nothing is built in the
web process.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import parametric

from ..builds import Preparing, build_key, request_build
from ..orders.generation import Generation
from ..orders.placing import ItemRequest

PREVIEW_FORMATS = ("glb", "stl")
CACHE_KEY = re.compile(r"^[0-9a-f]{64}$")


def preview_request(item: ItemRequest) -> dict[str, Any]:
    """What a worker needs to build ``item``'s preview (stored with the build)."""
    return {"template": item.template.id, "version": item.template.version, "params": item.params,
            "material": item.material}


def cached_preview(item: ItemRequest, generation: Generation) -> parametric.Manifest | None:
    """The item's preview files from the cache (reads JSON, no kernel), or ``None`` when they are not there."""
    if generation.cache.lookup(generation.key(item.template, item.params), PREVIEW_FORMATS) is None:
        return None
    return parametric.render(item.template.id, item.params, formats=PREVIEW_FORMATS, material=item.material,
                             settings=generation.settings, cache=generation.cache)


def request_preview(item: ItemRequest, services: Any, client: str | None,
                    priority: str = "preview", again: bool = True) -> parametric.Manifest | Preparing:
    """The item's preview from the cache, or :class:`Preparing` once a worker has been asked to build it
    (``services``: the app's :class:`web.services.Services`).

    Raises ``web.builds.BuildFailed`` when it cannot be built and ``web.limits.RateLimited`` when the
    client asked for too many new builds."""
    manifest = cached_preview(item, services.generation)
    if manifest is not None:
        return manifest
    key = build_key("preview", services.generation.key(item.template, item.params))
    outcome = request_build(services.database, services.config, services.build_limit, "preview", key,
                            preview_request(item), client,
                            lambda level: services.queue.build_preview(key, priority=level), priority,
                            require_space=services.generation.cache.require_space)
    if isinstance(outcome, Preparing):
        return outcome
    manifest = cached_preview(item, services.generation)
    if manifest is None and again:  # built, then gone from the cache: build it again
        from ..builds import forget

        forget(services.database, key)
        return request_preview(item, services, client, priority, again=False)
    if manifest is None:
        return Preparing(key, "queued", max(1, int(services.config["BUILD_POLL_SECONDS"])))
    return manifest


def build(request: dict[str, Any], generation: Generation) -> None:
    """On a worker: render the preview files into the cache."""
    template = parametric.get_template(request["template"])
    if template.version != request["version"]:
        raise parametric.ValidationError([parametric.FieldError(
            "template", f"{template.id} is now version {template.version}; ask again")])
    parametric.render(template.id, request["params"], formats=PREVIEW_FORMATS, material=request["material"],
                      settings=generation.settings, cache=generation.cache, timeout=generation.render_timeout)


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
