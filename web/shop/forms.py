"""The configurator form, generated from a template's parameter model (no form is written by hand).

:func:`form_fields` turns each field of ``Template.Params`` into a :class:`FormField`: its
input kind (number, count, choice, switch, text), unit, range, step, length limit, help text
and group, ordered as the template declares. :func:`params_from_form` reads the submitted
form (or the query string of a preview request) back into raw parameters for the core to
validate; it converts nothing itself: a plain number typed while the form shows another unit
system gets that unit written after it (``"31.5"`` -> ``"31.5in"``), and anything typed with a
unit (``"6ft"``) goes to the core's one length parser as it is. Lengths are text inputs, so
nothing typed is dropped by the browser. Input names are ``params.<field>``, the same names the
order API uses in its errors, so an error lands next to its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import parametric
from parametric import Template
from parametric.units import LENGTH_UNITS, format_length, format_number, length_value

UNIT_SYSTEMS = tuple(LENGTH_UNITS)
UNIT_HINTS = {"mm": "mm", "cm": "cm", "in": "in", "ft": "ft + in"}
"""What the box beside a length input says it is written in."""
PREFIX = "params."
UNIT_LABELS = {"mm": "mm", "deg": "°", "count": "", "": ""}


@dataclass(frozen=True)
class FormField:
    """One input of the configurator, in the model's units (mm for lengths)."""

    name: str
    label: str
    kind: str                      # "number", "count", "choice", "switch" or "text"
    unit: str                      # the model's unit: "mm", "deg", "count", "%", ""
    description: str
    allowed: str                   # what the model accepts, in words
    group: str
    default: Any
    optional: bool                 # a number left empty is derived by the template
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] = ()
    allowed_by_units: tuple[tuple[str, str], ...] = ()  # lengths: what is allowed, in each unit system
    stocked_in: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    """A sheet thickness field where the shop has routers: per choice, the line materials it is stocked in."""

    def materials_stocking(self, value: Any) -> tuple[str, ...] | None:
        """The line materials ``value`` is stocked in, or ``None`` when the field is not narrowed by stock."""
        if not self.stocked_in:
            return None
        return next((materials for choice, materials in self.stocked_in if choice == value), ())

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def dom_id(self) -> str:
        return "f-" + self.name

    @property
    def is_length(self) -> bool:
        """A length in mm: shown in inches when the customer switches units."""
        return self.unit == "mm" and self.kind == "number"

    @property
    def unit_label(self) -> str:
        return UNIT_LABELS.get(self.unit, self.unit)

    def bounds(self, units: str = "mm") -> dict[str, str]:
        """The unit hint the input shows (``in``, ``ft + in`` for a length in those units)."""
        return {"unit": UNIT_HINTS.get(units, "mm") if self.is_length else self.unit_label}

    @property
    def input_mode(self) -> str:
        """The phone keyboard for the input: a length may carry a unit, so it gets letters too."""
        if self.is_length:
            return "text"
        return "numeric" if self.kind == "count" else "decimal"

    def allowed_text(self, units: str = "mm") -> str:
        """What the field accepts, in words, in the units shown (a select or a switch needs none)."""
        if self.kind in ("choice", "switch"):
            return ""
        if self.is_length:
            return dict(self.allowed_by_units).get(units, self.allowed)
        return self.allowed

    def choice_label(self, value: Any) -> str:
        if isinstance(value, str):
            return value.replace("_", " ")
        if self.unit == "mm" and value == 0:
            return "none"
        return f"{format_number(value, 4)} {self.unit_label}".strip() if isinstance(value, int | float) else str(value)


@dataclass(frozen=True)
class FormGroup:
    name: str
    fields: list[FormField] = field(default_factory=list)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _kind(meta: Mapping[str, Any], annotation: Any) -> str:
    if "choices" in meta:
        return "choice"
    if annotation is bool or isinstance(meta["default"], bool):
        return "switch"
    if meta["max_length"] is not None:
        return "text"
    if meta.get("unit") == "count":
        return "count"
    return "number"


def _stocked_in(template: Template, name: str, stocked: Mapping[str, Any] | None) -> tuple[tuple[Any, tuple[str, ...]],
                                                                                             ...]:
    """Per choice of a sheet field, the line materials (any the template offers) whose sheet material the shop
    stocks at that thickness; empty for other fields or a shop without routers."""
    if stocked is None or name not in template.sheet_fields():
        return ()
    by_sheet = template.stocked_choices(stocked)[name]
    sheet_of = {m: template.materials_by_process(m).get("cnc") for m in template.materials}
    return tuple((choice, tuple(m for m, sheet in sheet_of.items() if sheet and choice in by_sheet.get(sheet, ())))
                 for choice in template.Params.field_help(name)["choices"])


def form_fields(template: Template, stocked: Mapping[str, Any] | None = None) -> list[FormField]:
    """Every parameter of the template as a form field, in the template's group and field order; with the shop's
    ``stocked`` sheet thicknesses by material (``web.machines.stocked``), sheet thickness fields say which of their
    choices each material is stocked in."""
    model = template.Params
    fields = []
    for index, (name, info) in enumerate(model.model_fields.items()):
        meta = model.field_help(name)
        kind = _kind(meta, info.annotation)
        fields.append((index, meta.get("order"), FormField(
            name=name, label=_label(name), kind=kind, unit=meta.get("unit") or "", description=meta["description"],
            allowed=model.allowed(name), group=meta.get("group") or "Options", default=meta["default"],
            optional=meta["default"] is None, minimum=meta["minimum"], maximum=meta["maximum"],
            step=meta.get("step"), min_length=meta["min_length"], max_length=meta["max_length"],
            choices=tuple(meta.get("choices") or ()),
            allowed_by_units=tuple((units, model.allowed(name, units)) for units in UNIT_SYSTEMS)
            if meta.get("unit") == "mm" else (), stocked_in=_stocked_in(template, name, stocked))))
    groups = list(template.groups)
    ranked = sorted(fields, key=lambda row: (groups.index(row[2].group) if row[2].group in groups else len(groups),
                                             row[1] if row[1] is not None else 10_000 + row[0], row[0]))
    return [row[2] for row in ranked]


def form_groups(template: Template, stocked: Mapping[str, Any] | None = None) -> list[FormGroup]:
    """The fields in their groups, groups in the template's order (undeclared groups last)."""
    grouped: dict[str, FormGroup] = {}
    for form_field in form_fields(template, stocked):
        grouped.setdefault(form_field.group, FormGroup(form_field.group)).fields.append(form_field)
    return list(grouped.values())


def units_from(values: Mapping[str, Any]) -> str:
    """The unit system the form's lengths are written in: ``units`` if it is mm, cm, in or ft, else mm."""
    units = values.get("units")
    return units if units in UNIT_SYSTEMS else "mm"


def params_from_form(template: Template, values: Mapping[str, Any], units: str = "mm") -> dict[str, Any]:
    """Raw parameters from submitted form values, for the template's model to validate.

    An empty optional number is left out (the template derives it); an empty required
    value is passed on, so the model says it is missing. A switch that was not sent is off.
    """
    params: dict[str, Any] = {}
    for form_field in form_fields(template):
        raw = values.get(form_field.input_name)
        if form_field.kind == "switch":
            params[form_field.name] = raw is not None and str(raw).lower() in ("on", "true", "1", "yes")
            continue
        if raw is None:
            continue
        text = str(raw).strip()
        if form_field.kind == "text":
            if text or not form_field.optional:
                params[form_field.name] = text
            continue
        if not text:
            if not form_field.optional:
                params[form_field.name] = ""
            continue
        if form_field.kind == "choice":
            params[form_field.name] = next((c for c in form_field.choices if str(c) == text), text)
        elif form_field.is_length and units != "mm" and _is_plain_number(text):
            params[form_field.name] = f"{text}{units}"
        else:
            params[form_field.name] = text
    return params


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def display_number(value: float, units: str = "mm") -> str:
    """A length (mm) as the form's text input shows it in ``units``: ``"31.5"``, ``"6 ft 2 in"``."""
    return length_value(value, units, 4 if units == "mm" else 3)


def display_values(template: Template, params: Mapping[str, Any], explicit: set[str], units: str = "mm",
                   ) -> dict[str, str]:
    """Form values (strings) for canonical ``params``; optional fields not in ``explicit`` stay empty."""
    values: dict[str, str] = {}
    for form_field in form_fields(template):
        value = params.get(form_field.name)
        if form_field.optional and form_field.name not in explicit or value is None:
            values[form_field.input_name] = ""
        elif form_field.kind == "switch":
            values[form_field.input_name] = "on" if value else ""
        elif form_field.kind == "choice" or form_field.kind == "text":
            values[form_field.input_name] = str(value)
        elif form_field.is_length:
            values[form_field.input_name] = display_number(float(value), units)
        else:
            values[form_field.input_name] = f"{value:g}" if isinstance(value, float) else str(value)
    return values


def field_errors(problems: list[Any]) -> dict[str, list[str]]:
    """Error messages by input name (``params.width``, ``quantity``, ``customer.email``; ``""`` for the form)."""
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        name = problem.field if problem.field != "params" else ""
        by_field.setdefault(name, []).append(problem.message)
    return by_field


def parameter_rows(template_id: str, params: Mapping[str, Any], units: str = "mm") -> list[dict[str, str]]:
    """Stored (canonical) parameters as rows to show: label, value and unit, in the template's order, lengths
    in the customer's ``units``."""
    try:
        fields = {f.name: f for f in form_fields(parametric.get_template(template_id))}
    except parametric.ValidationError:  # a template this server no longer has: show the names as stored
        fields = {}
    ordered = [name for name in fields if name in params] + [name for name in params if name not in fields]
    rows = []
    for name in ordered:
        value, form_field = params[name], fields.get(name)
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif value is None:
            shown = "—"
        elif form_field is not None and form_field.unit == "mm" and isinstance(value, int | float):
            rows.append({"name": name, "label": form_field.label, "value": format_length(value, units), "unit": ""})
            continue
        elif isinstance(value, str):
            shown = value.replace("_", " ") if form_field is not None and form_field.kind == "choice" else value
        elif isinstance(value, float):
            shown = format_number(value, 4)
        else:
            shown = str(value)
        unit = form_field.unit_label if form_field is not None and not isinstance(value, bool | str) else ""
        rows.append({"name": name, "label": form_field.label if form_field else name, "value": shown, "unit": unit})
    return rows
