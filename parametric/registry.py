"""The template registry: every product the shop can make, by id.

A template is a class deriving from :class:`Template`, decorated with :func:`register`.
It names its product (id, version, family, process, materials), declares one parameter
model and its presets, and implements a pure ``build(params)`` returning a CadQuery shape
or a list of :class:`~parametric.part.Part`. Templates import CadQuery inside ``build`` so
that listing, validating and serving cached files never loads the CAD kernel.

Templates are found through the ``parametric.templates`` entry point group (the project's
own ``templates_models`` package is one), so a shop can ship its own in a separate package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from .errors import FieldError, ValidationError
from .materials import materials as material_table
from .schema import TemplateParams, json_schema, validate
from .units import format_length

PROCESSES = ("fdm", "cnc")
FAMILIES = ("furniture", "footwear", "home")


@dataclass(frozen=True)
class Preset:
    """A named starting configuration a customer recognises ("IKEA-depth bookcase")."""

    label: str
    params: Mapping[str, Any]
    description: str = ""
    material: str | None = None


@dataclass(frozen=True)
class Check:
    """A key dimension a workshop measures on the finished part, with its tolerance (mm)."""

    label: str
    nominal_mm: float
    tolerance_mm: float = 0.5


@dataclass(frozen=True)
class Hardware:
    """Something the product needs besides its parts, bought in: ``"35 mm cup hinge"`` x 2, with what to know
    when picking it (``"full overlay, 110 degrees"``)."""

    item: str
    quantity: int
    note: str = ""


class Template:
    """Base class of a product template; subclasses set the class attributes and ``build``."""

    id: ClassVar[str]
    version: ClassVar[str]
    name: ClassVar[str]
    family: ClassVar[str]
    process: ClassVar[tuple[str, ...]]
    materials: ClassVar[tuple[str, ...]]
    description: ClassVar[str] = ""
    Params: ClassVar[type[TemplateParams]]
    presets: ClassVar[dict[str, Preset]] = {}
    groups: ClassVar[tuple[str, ...]] = ("Dimensions", "Options")

    @property
    def default_material(self) -> str:
        return self.materials[0]

    def build(self, params: Any) -> Any:
        """The product's geometry for validated ``params``; pure, no I/O."""
        raise NotImplementedError

    def expected_size(self, params: Any) -> tuple[float, float, float] | None:
        """The assembly's bounding-box size (x, y, z) in mm the parameters promise, if known."""
        return None

    def quality_checks(self, params: Any) -> list[Check]:
        """Key dimensions with tolerances for the job sheet."""
        return []

    def hardware(self, params: Any) -> list[Hardware]:
        """What one product needs bought in (hinges, screws, wall plugs, pins), for the job sheet."""
        return []

    def assembly(self, params: Any) -> list[str]:
        """How the parts go together, one step per line, in order, for the job sheet."""
        return []

    # -- derived from the declaration -------------------------------------------------

    def validate(self, values: Mapping[str, Any] | None, units: str = "mm") -> TemplateParams:
        """Validated parameters, or a :class:`ValidationError` whose messages write lengths in ``units``."""
        return validate(self.Params, dict(values or {}), units)

    def resolve(self, values: Mapping[str, Any] | None = None, preset: str | None = None,
                units: str = "mm") -> TemplateParams:
        """Validated parameters from an optional preset overlaid with ``values`` (messages in ``units``)."""
        merged: dict[str, Any] = {}
        if preset is not None:
            if preset not in self.presets:
                raise ValidationError([FieldError("preset", f"unknown preset {preset!r}; allowed: "
                                                  + ", ".join(self.presets))])
            merged.update(self.presets[preset].params)
        merged.update(values or {})
        return self.validate(merged, units)

    def check_material(self, material: str | None, preset: str | None = None) -> str:
        """The material id to use (the one asked for, else the preset's, else the template's first), or a
        validation error naming the allowed ones."""
        chosen = material or self.preset_material(preset) or self.default_material
        if chosen not in self.materials:
            raise ValidationError([FieldError("material", f"{chosen!r} is not offered for {self.id}; "
                                              f"allowed: {', '.join(self.materials)}")])
        return chosen

    def preset_material(self, preset: str | None) -> str | None:
        """The material a preset is made in, if it names one."""
        chosen = self.presets.get(preset) if preset else None
        return chosen.material if chosen is not None else None

    def materials_by_process(self, material: str | None = None) -> dict[str, str]:
        """The material of each process this product's parts are made by.

        The chosen ``material`` (checked, default the template's first) is used for the parts of
        its own process; each other process takes the first material the template offers for it.
        A wall shelf in oak: the board is cut from oak, the brackets are printed in PLA.
        """
        chosen = self.check_material(material)
        table = material_table()
        by_process = {table[chosen].process: chosen}
        for offered in self.materials:
            by_process.setdefault(table[offered].process, offered)
        return by_process

    def sheet_fields(self) -> list[str]:
        """The fields that choose the thickness of a sheet the router cuts (declared ``choice(..., sheet=True)``)."""
        return [name for name in self.Params.model_fields if self.Params.field_help(name).get("sheet")]

    def stocked_choices(self, stocked: Mapping[str, Sequence[float]]) -> dict[str, dict[str, list[Any]]]:
        """Per sheet field, per sheet material the template offers, the field's choices the shop stocks
        (``stocked``: thicknesses in mm by material, :func:`parametric.routing.stocked_thicknesses`)."""
        table = material_table()
        sheet_materials = [m for m in self.materials if table[m].process == "cnc"]
        return {name: {material: [c for c in self.Params.field_help(name)["choices"]
                                  if _stocked(c, stocked.get(material, ()))] for material in sheet_materials}
                for name in self.sheet_fields()}

    def stock_problems(self, params: Mapping[str, Any], material: str | None,
                       stocked: Mapping[str, Sequence[float]] | None, units: str = "mm") -> list[FieldError]:
        """Why the sheet thicknesses in ``params`` (canonical) cannot be made from the shop's stock in the line's
        sheet material, one problem per field; none when ``stocked`` is ``None`` (the shop has no routers: no
        stock to narrow the choices to) or every thickness is stocked."""
        if stocked is None or not self.sheet_fields():
            return []
        sheet_material = self.materials_by_process(material).get("cnc")
        if sheet_material is None:
            return []
        name = material_table()[sheet_material].name
        have = stocked.get(sheet_material, ())
        problems = []
        for field in self.sheet_fields():
            value = params.get(field)
            needs = self.Params.field_help(field)["sheet"]
            if value is None or _stocked(value, have) or (isinstance(needs, str) and not params.get(needs)):
                continue
            offered = [c for c in self.Params.field_help(field)["choices"] if _stocked(c, have)]
            if offered:
                allowed = ", ".join(format_length(c, units) for c in offered)
                message = (f"{format_length(value, units)} {name} is not stocked; the shop's routers have {name} in "
                           f"{allowed}")
            else:
                choices = ", ".join(format_length(c, units) for c in self.Params.field_help(field)["choices"])
                message = (f"the shop's routers stock no {name} in a {self.Params.label(field)} offered here "
                           f"({choices}); choose another material")
            problems.append(FieldError(field, message))
        return problems

    def schema(self, stocked: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
        """JSON Schema of the parameters plus the product's facts and presets; with the shop's ``stocked``
        thicknesses by material, each sheet field says which of its choices are stocked in each sheet
        material (``x-stocked``), the only ones an order in that material may choose."""
        schema = json_schema(self.Params)
        if stocked is not None:
            for field, by_material in self.stocked_choices(stocked).items():
                schema["properties"][field]["x-stocked"] = by_material
        schema["title"] = self.name
        schema["description"] = self.description
        schema["x-template"] = self.summary()
        schema["x-groups"] = list(self.groups)
        schema["x-presets"] = {key: {"label": p.label, "description": p.description, "params": dict(p.params),
                                     **({"material": p.material} if p.material else {})}
                               for key, p in self.presets.items()}
        return schema

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "name": self.name, "family": self.family,
                "process": list(self.process), "materials": list(self.materials),
                "default_material": self.default_material, "description": self.description}


def _stocked(thickness: Any, have: Sequence[float]) -> bool:
    from .routing import THICKNESS_TOLERANCE_MM

    return any(abs(float(thickness) - float(t)) <= THICKNESS_TOLERANCE_MM for t in have)


_REGISTRY: dict[str, Template] = {}
_loaded = False


def register(cls: type[Template]) -> type[Template]:
    """Class decorator adding a template to the registry, after checking its declaration."""
    template = cls()
    problems = []
    for attribute in ("id", "version", "name", "family", "process", "materials", "Params"):
        if not hasattr(cls, attribute):
            problems.append(f"missing {attribute}")
    if problems:
        raise TypeError(f"template {cls.__name__}: " + ", ".join(problems))
    if not set(cls.process) <= set(PROCESSES):
        raise TypeError(f"template {cls.id}: process must be among {PROCESSES}")
    unknown = [m for m in cls.materials if m not in material_table()]
    if unknown:
        raise TypeError(f"template {cls.id}: unknown materials {unknown}")
    for name, info in cls.Params.model_fields.items():
        if not info.description:
            raise TypeError(f"template {cls.id}: field {name} has no description")
    for preset in cls.presets.values():
        validate(cls.Params, dict(preset.params))  # a broken preset is a bug: fail at import
    existing = _REGISTRY.get(cls.id)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise TypeError(f"template id {cls.id!r} registered twice")
    _REGISTRY[cls.id] = template
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    packages = [ep.load() for ep in entry_points(group="parametric.templates")]
    if not packages:  # running from a source tree that is not installed
        packages = [importlib.import_module("templates_models")]
    for package in packages:
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def templates() -> list[Template]:
    """Every registered template, sorted by id."""
    _load()
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def get_template(template_id: str) -> Template:
    """The template with this id, or a validation error listing the known ids."""
    _load()
    try:
        return _REGISTRY[template_id]
    except (KeyError, TypeError):
        raise ValidationError([FieldError("template", f"unknown template {template_id!r}; allowed: "
                                          + ", ".join(sorted(_REGISTRY)))]) from None
