"""Parameter models: the one source of truth for a template's inputs.

A template's parameters are a pydantic model derived from :class:`TemplateParams`. Each
field is declared with :func:`length`, :func:`angle`, :func:`number`, :func:`count`,
:func:`choice`, :func:`switch` or :func:`text`, so it always carries a default, a range
or choices, a unit and a description. Cross-field rules are methods decorated with
:func:`rule`; each returns ``None`` or a plain-language reason. The web form, the REST
schema, the CLI ``--set`` parser and the job sheet are all generated from this model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from .errors import FieldError, ValidationError
from .joinery import NOMINAL, SheetFit
from .text import refused_character
from .units import UnitError, format_length, format_number, length_range, length_units, to_degrees, to_mm

Mm = Annotated[float, BeforeValidator(to_mm)]
"""A length in millimetres; accepts a number (mm) or a string with a unit."""

Degrees = Annotated[float, BeforeValidator(to_degrees)]
"""An angle in degrees; accepts a number (degrees) or a string with a unit."""


def _length_choice(value: Any) -> Any:
    """``"18"``, ``"18mm"``, ``"3/4in"`` or ``18.0`` as the number a ``Literal`` of mm choices holds."""
    if isinstance(value, str | float) and not isinstance(value, bool):
        try:
            mm = round(to_mm(value), 6)
        except UnitError:
            return value  # the Literal check then names the choices
        return int(mm) if mm.is_integer() else mm
    return value


LengthChoice = BeforeValidator(_length_choice)
"""Put on a ``Literal`` of standard sizes in mm (``Annotated[Literal[16, 18], LengthChoice]``) so that
text from a form or ``--set`` (``"18"``, ``"18mm"``) selects a choice."""


def _extra(unit: str, step: float | None, group: str, order: int | None, **more: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"unit": unit, "group": group}
    if step is not None:
        extra["step"] = step
    if order is not None:
        extra["order"] = order
    extra.update({k: v for k, v in more.items() if v is not None})
    return extra


def length(default: float | None, *, ge: float, le: float, description: str, step: float | None = None,
           group: str = "Dimensions", order: int | None = None) -> Any:
    """A length field in millimetres (customers may type other units)."""
    return Field(default, ge=ge, le=le, description=description,
                 json_schema_extra=_extra("mm", step, group, order, accepts_units=True))


def angle(default: float, *, ge: float, le: float, description: str, step: float | None = None,
          group: str = "Dimensions", order: int | None = None) -> Any:
    """An angle field in degrees."""
    return Field(default, ge=ge, le=le, description=description,
                 json_schema_extra=_extra("deg", step, group, order, accepts_units=True))


def number(default: float, *, ge: float, le: float, unit: str, description: str, step: float | None = None,
           group: str = "Dimensions", order: int | None = None) -> Any:
    """A plain number with a unit that is not a length or an angle (e.g. ``"%"``)."""
    return Field(default, ge=ge, le=le, description=description, json_schema_extra=_extra(unit, step, group, order))


def count(default: int | None, *, ge: int, le: int, description: str, unit: str = "count",
          group: str = "Options", order: int | None = None) -> Any:
    """A whole number of things (shelves, brackets, holes); ``None`` default means derived."""
    return Field(default, ge=ge, le=le, description=description, json_schema_extra=_extra(unit, 1, group, order))


def choice(default: Any, *, choices: Iterable[Any], description: str, unit: str = "",
           group: str = "Options", order: int | None = None, sheet: bool | str = False) -> Any:
    """One of a fixed list of values; declare the field's type as a ``Literal`` of the same values.

    ``sheet`` marks the thickness (mm) of a sheet the router cuts parts from, in the line's sheet
    material: where the shop has routers, only the thicknesses they stock are offered
    (:meth:`parametric.registry.Template.stock_problems`). A field name instead of ``True`` names the switch
    without which that sheet is not cut (a bookcase's back panel)."""
    return Field(default, description=description,
                 json_schema_extra=_extra(unit, None, group, order, choices=list(choices), sheet=sheet or None))


def switch(default: bool, *, description: str, group: str = "Options", order: int | None = None) -> Any:
    """An on/off option."""
    return Field(default, description=description, json_schema_extra=_extra("", None, group, order))


def text(default: str | None, *, min_length: int = 0, max_length: int, description: str, group: str = "Options",
         order: int | None = None, multiline: bool = False, allowed: str | None = None) -> Any:
    """Free text with a length limit (e.g. a name to emboss). Control characters are refused (tabs and line
    breaks too, unless ``multiline``), and so are bidirectional controls and zero-width characters, which
    would make the text read differently from what is made (:func:`parametric.text.refused_character`).
    ``allowed`` says in words what the text must be when that is more than its length (a shoe size)."""
    return Field(default, min_length=min_length, max_length=max_length, description=description,
                 json_schema_extra=_extra("", None, group, order, multiline=multiline or None, allowed=allowed))


RuleFunction = Callable[["TemplateParams"], str | None]


def rule(*fields: str) -> Callable[[RuleFunction], RuleFunction]:
    """Mark a method as a cross-field rule about ``fields``; it returns ``None`` or the reason it fails."""

    def mark(function: RuleFunction) -> RuleFunction:
        function.__rule_fields__ = fields  # type: ignore[attr-defined]
        return function

    return mark


class TemplateParams(BaseModel):
    """Base of every template's parameter model: unknown fields are refused, defaults validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=False)

    _rules: ClassVar[list[RuleFunction]] = []
    _fit: SheetFit = PrivateAttr(default=NOMINAL)

    @property
    def fit(self) -> SheetFit:
        """How wide housings for sheets are cut (:mod:`parametric.joinery`): the nominal thickness plus the
        allowance, unless the parameters were :meth:`fitted` to a router's measured stock. Not a parameter:
        it never enters the schema, the canonical values or the cache key."""
        return self._fit

    def fitted(self, fit: SheetFit) -> TemplateParams:
        """A copy of these parameters whose housings are cut to ``fit`` (the sheets a router really has)."""
        copy = self.model_copy()
        copy._fit = fit
        return copy

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._rules = [member for member in (getattr(cls, name, None) for name in dir(cls))
                      if callable(member) and hasattr(member, "__rule_fields__")]

    @field_validator("*", mode="before")
    @classmethod
    def _printable_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Every text field refuses control, bidirectional and zero-width characters, before its own checks."""
        if isinstance(value, str) and info.field_name in cls.model_fields:
            meta = cls.field_help(info.field_name)
            if meta["max_length"] is not None:
                reason = refused_character(value, multiline=bool(meta.get("multiline")))
                if reason:
                    raise ValueError(f"the text {reason}")
        return value

    def rule_violations(self) -> list[FieldError]:
        """Every cross-field rule this parameter set breaks, with its reason."""
        problems = []
        for check in type(self)._rules:
            reason = check(self)
            if reason:
                fields = check.__rule_fields__  # type: ignore[attr-defined]
                problems.append(FieldError(fields[0] if fields else "", reason))
        return problems

    def canonical(self) -> dict[str, Any]:
        """The parameters in mm and degrees, rounded so that equal requests hash equally."""
        return {name: _canonical_value(value) for name, value in self.model_dump(mode="json").items()}

    @classmethod
    def field_help(cls, name: str) -> dict[str, Any]:
        """A field's metadata (unit, range, choices, description) as plain values."""
        info = cls.model_fields[name]
        extra = dict(info.json_schema_extra or {}) if isinstance(info.json_schema_extra, dict) else {}
        minimum = maximum = min_length = max_length = None
        for meta in info.metadata:
            minimum = getattr(meta, "ge", minimum)
            maximum = getattr(meta, "le", maximum)
            min_length = getattr(meta, "min_length", min_length)
            max_length = getattr(meta, "max_length", max_length)
        return {"name": name, "description": info.description or "", "default": info.default,
                "minimum": minimum, "maximum": maximum, "min_length": min_length, "max_length": max_length,
                **extra}

    @classmethod
    def label(cls, name: str) -> str:
        """A field's name as people say it: ``shelf_count`` -> ``shelf count``."""
        return name.replace("_", " ")

    @classmethod
    def allowed(cls, name: str, units: str = "mm") -> str:
        """What a field accepts, in words, lengths in ``units`` (mm, cm, in or ft): ``"300 to 1500 mm"``,
        ``"11.9 to 59 in"``, ``"one of: pla, petg"``, ``"a whole number from 1 to 8"``."""
        if name not in cls.model_fields:
            return ""
        meta = cls.field_help(name)
        unit = meta.get("unit") or ""
        if "choices" in meta:
            return "one of: " + ", ".join(_choice_text(c, unit, units) for c in meta["choices"])
        if meta.get("allowed"):
            return str(meta["allowed"])
        if meta["max_length"] is not None:
            if meta["min_length"]:
                return f"{meta['min_length']} to {meta['max_length']} characters"
            return f"at most {meta['max_length']} characters"
        if meta["minimum"] is not None and meta["maximum"] is not None:
            if unit == "mm":
                text_ = length_range(meta["minimum"], meta["maximum"], units)
            elif unit == "count":
                text_ = f"a whole number from {_num(meta['minimum'])} to {_num(meta['maximum'])}"
            elif unit == "deg":
                text_ = f"{_num(meta['minimum'])}° to {_num(meta['maximum'])}°"
            else:
                suffix = f" {unit}" if unit else ""
                text_ = f"{_num(meta['minimum'])} to {_num(meta['maximum'])}{suffix}"
            if meta["default"] is None:
                text_ += ", or leave it empty to have it worked out"
            return text_
        if unit == "" and isinstance(meta["default"], bool):
            return "yes or no (true or false)"
        return ""


def _num(value: float) -> str:
    return format_number(value, 4)


def _choice_text(choice: Any, unit: str, units: str) -> str:
    if isinstance(choice, str):
        return choice.replace("_", " ")
    if unit == "mm" and isinstance(choice, int | float):
        return format_length(choice, units)
    return f"{_num(choice)} {unit}".strip() if isinstance(choice, int | float) else str(choice)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, float):
        rounded = round(value, 4)
        if rounded == 0 or math.isclose(rounded, round(rounded)):
            rounded = float(round(rounded))
        return rounded + 0.0  # turns -0.0 into 0.0
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    return value


_TOO = {"greater_than_equal": "small", "greater_than": "small", "less_than_equal": "large", "less_than": "large"}
_TOO_LENGTH = {"small": "short", "large": "long"}
_TOO_COUNT = {"small": "few", "large": "many"}


def _given(value: Any) -> str:
    """What was typed, quoted for a message (never Python's repr)."""
    text = format_number(value) if _is_number(value) else str(value).strip()
    return f"“{text}”"


def _message(model: type[TemplateParams], error: Any, units: str = "mm") -> FieldError:
    """One pydantic error as a sentence a customer understands: what was wrong, then what the field takes in
    the customer's ``units`` ("6 in is too short: the height must be 11.9 to 94.4 in")."""
    location = ".".join(str(part) for part in error["loc"])
    name = str(error["loc"][0]) if error["loc"] else ""
    kind = error["type"]
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return FieldError(location, f"unknown parameter; known parameters: {known}")
    if name not in model.model_fields:  # a model-wide validator's error
        return FieldError(location, str(error.get("ctx", {}).get("error", error["msg"])))
    meta = model.field_help(name)
    unit = meta.get("unit") or ""
    label = model.label(name)
    must = f"the {label} must be {model.allowed(name, units)}"
    given = error.get("input")
    if kind in _TOO:
        size = _TOO[kind]
        if unit == "mm" and _is_number(given):
            shown, size = format_length(given, units), _TOO_LENGTH[size]
        elif unit == "count":
            shown, size = _given(given).strip("“”"), _TOO_COUNT[size]
        elif unit == "deg" and _is_number(given):
            shown = f"{format_number(given, 4)}°"
        else:
            shown = f"{format_number(given, 4)} {unit}".strip() if _is_number(given) else _given(given)
        return FieldError(location, f"{shown} is too {size}: {must}")
    if kind == "missing":
        return FieldError(location, f"the {label} is missing: it must be {model.allowed(name, units)}")
    if kind == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        if meta["max_length"] is not None or unit not in ("mm", "deg"):
            return FieldError(location, reason)  # the field's own validator says what it accepts
        return FieldError(location, f"{reason}. {must[0].upper()}{must[1:]}")
    if kind == "literal_error":
        return FieldError(location, f"{_given(given)} is not one of the choices: {must}")
    if kind in ("string_too_long", "string_too_short"):
        count = len(given) if isinstance(given, str) else 0
        return FieldError(location, f"the {label} is {count} characters long: it must be {model.allowed(name)}")
    if kind.startswith("int_"):
        return FieldError(location, f"{_given(given)} is not a whole number: {must}")
    if kind.startswith("float_"):
        return FieldError(location, f"{_given(given)} is not a number: {must}")
    if kind.startswith("bool_"):
        return FieldError(location, f"{_given(given)} is neither yes nor no: {must}")
    if kind.startswith("string_"):
        return FieldError(location, f"the {label} must be text: {model.allowed(name)}")
    return FieldError(location, f"{_given(given)} is not accepted: {must}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(model: type[TemplateParams], values: dict[str, Any] | None, units: str = "mm") -> TemplateParams:
    """Validate raw parameters (from a form, JSON or the CLI), or raise :class:`ValidationError` listing
    every problem, lengths in the messages written in ``units`` (mm, cm, in or ft)."""
    units = length_units(units)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValidationError([FieldError("params", "parameters must be an object of name: value pairs")])
    try:
        params = model.model_validate(values)
    except pydantic.ValidationError as error:
        raise ValidationError([_message(model, e, units) for e in error.errors(include_url=False)]) from None
    except (ValueError, TypeError, ArithmeticError) as error:  # raised by a derivation in a model validator
        raise ValidationError([FieldError("params", str(error))]) from None
    problems = params.rule_violations()
    if problems:
        raise ValidationError(problems)
    return params


def snap_to_steps(model: type[TemplateParams], canonical: dict[str, Any]) -> dict[str, Any]:
    """``canonical`` with every number moved to the nearest step of its field (counted from the field's
    minimum, kept within its range), so that values between two steps make one configuration, not one
    each. Fields without a step, and values that are not numbers, are left as they are."""
    snapped = dict(canonical)
    for name, value in canonical.items():
        if name not in model.model_fields or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        meta = model.field_help(name)
        step = meta.get("step")
        if not step or step <= 0:
            continue
        base = float(meta["minimum"]) if meta["minimum"] is not None else 0.0
        moved = base + round((float(value) - base) / step) * step
        if meta["maximum"] is not None and moved > float(meta["maximum"]) + 1e-9:
            moved -= step
        if meta["minimum"] is not None and moved < base - 1e-9:
            moved += step
        moved = _canonical_value(float(moved))
        snapped[name] = int(moved) if isinstance(value, int) and float(moved).is_integer() else moved
    return snapped


def json_schema(model: type[TemplateParams]) -> dict[str, Any]:
    """The JSON Schema of a parameter model, with units, groups and steps as extra keys."""
    return model.model_json_schema(mode="validation")
