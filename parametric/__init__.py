"""parametric: parametric CAD templates to verified manufacturing files.

    >>> import parametric
    >>> manifest = parametric.render("wall_shelf", {"width": "32in"}, out_dir="output/shelf")
    >>> manifest.checks["watertight"]
    True

Importing this package does not load the CAD kernel; only a cache miss does.
"""

from .errors import FieldError, GeometryError, ParametricError, ValidationError
from .export import DEFAULT_FORMATS, FORMATS, ExportSettings
from .manifest import Manifest
from .registry import Preset, Template, get_template, register, templates
from .render import render

__all__ = [
    "DEFAULT_FORMATS", "FORMATS", "ExportSettings", "FieldError", "GeometryError", "Manifest", "ParametricError",
    "Preset", "Template", "ValidationError", "get_template", "register", "render", "templates",
]
