"""The request's inputs, cleaned at the edge, in one place, before any view or query sees them.

Every value of a request that is not a template parameter (those are the template's own model's:
:func:`parametric.schema.text`) is checked here: the URL's path segments (order id, item id), the
query string (tokens, staff filters), the headers the app reads (``X-Order-Token``,
``Idempotency-Key``, the staff user name of basic auth), form fields (customer name and e-mail, the
staff login) and every string of a JSON body. A control character (NUL among them, which PostgreSQL
cannot store) is refused with a field error naming it, on every backend alike; a tab or line break
only in the few form fields that hold several lines. A JSON body on ``/api`` must say it is JSON
(``Content-Type: application/json``): anything else, such as a cross-site form's ``text/plain``, is
a 415. :func:`whole_number` is the one parser of whole numbers typed as text (quantities, pages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from parametric import FieldError
from parametric.text import refused_character

if TYPE_CHECKING:
    from flask import Flask, Response

TEMPLATE_PARAMS = "params"
"""Form and query names under ``params.`` and JSON objects under ``params`` belong to the template's model."""

MULTILINE_FORM_FIELDS: set[str] = set()
"""Form fields that hold several lines (a textarea); a feature adds its own (``web.manufacturing``)."""

HEADERS = ("X-Order-Token", "Idempotency-Key")
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
ASCII_WHOLE_NUMBER = re.compile(r"^[0-9]{1,18}$")


def whole_number(raw: Any) -> int | None:
    """``raw`` as a whole number when it is one written in ASCII digits (``"12"``, ``12``); ``None`` otherwise.

    ``"²"``, ``"١٢"``, ``"1_000"``, ``" 12"`` and a 5,000-digit string are not numbers here: Python's
    ``int`` would take some of them, or fail on the last with an error that is no field's.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and ASCII_WHOLE_NUMBER.match(raw):
        return int(raw)
    return None


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string of a JSON document (keys included) with its field path, template parameters left out."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, element in enumerate(value):
            yield from _json_strings(element, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, element in value.items():
            field = f"{path}.{key}" if path else str(key)
            yield field, str(key)
            if key != TEMPLATE_PARAMS:
                yield from _json_strings(element, field)


def _problems() -> list[FieldError]:
    from flask import request

    found: list[FieldError] = []

    def check(field: str, value: str, multiline: bool = False) -> None:
        reason = refused_character(value, multiline=multiline, invisible=False)
        if reason:
            found.append(FieldError(field, reason))

    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            check(name, value)
    for name, value in request.args.items(multi=True):
        if not name.startswith(TEMPLATE_PARAMS + "."):
            check(name, name)
            check(name, value)
    for name in HEADERS:
        if name in request.headers:
            check(name, request.headers[name])
    credentials = request.authorization
    if credentials is not None and credentials.type == "basic":
        check("Authorization", credentials.username or "")
        check("Authorization", credentials.password or "")
    if request.method in BODY_METHODS:
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for name, value in request.form.items(multi=True):
                if not name.startswith(TEMPLATE_PARAMS + "."):
                    check(name, name)
                    check(name, value, multiline=name in MULTILINE_FORM_FIELDS)
        elif request.is_json:
            try:
                body = json.loads(request.get_data(cache=True))
            except (ValueError, RecursionError):
                body = None  # the view answers 400 with the parser's reason
            for field, value in _json_strings(body, ""):
                check(field, value)
    return found


def _is_json_api(path: str) -> bool:
    return path.startswith("/api/") or path.endswith("/preview")


def _refuse(problems: list[FieldError]) -> Response:
    from flask import render_template, request

    from .errors import errors_response

    if _is_json_api(request.path):
        return errors_response(problems, 422)
    listed = "; ".join(f"{problem.field or 'the form'}: {problem.message}" for problem in problems)
    page = render_template("error.html", title="This request holds characters we cannot take",
                           message=f"Please go back and correct it. {listed}.")
    from flask import make_response

    return make_response(page, 422)


def _not_json(content_type: str) -> Response:
    from .errors import json_errors

    shown = content_type or "none"
    return json_errors(415, f"the request body must be JSON sent as Content-Type: application/json (this one is "
                            f"{shown})", "Content-Type")


def clean_request() -> Response | None:
    """Refuse a request whose inputs hold control characters (422, every field named), or whose body on the
    JSON API is not declared JSON (415); ``None`` lets it through."""
    from flask import request

    if (request.path.startswith("/api/") and request.method in BODY_METHODS and not request.is_json
            and (request.content_length or request.mimetype)):
        return _not_json(request.mimetype)
    problems = _problems()
    if problems:
        return _refuse(problems)
    return None


def init_app(app: Flask) -> None:
    """Check every request's inputs before its view runs."""
    app.before_request(clean_request)
