"""Staff accounts: werkzeug password hashes in the users table, HTTP basic auth on staff endpoints."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import Database
from ..models import User

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    """A staff account that cannot be created as asked."""


def add_user(database: Database, name: str, password: str) -> None:
    """Create a staff account; raises :class:`UserError` for a bad name, short password or taken name."""
    if not USER_NAME.match(name):
        raise UserError("a user name is 1 to 80 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    try:
        with database.transaction() as session:
            session.add(User(name=name, password_hash=generate_password_hash(password)))
    except IntegrityError:
        raise UserError(f"there is already a user named {name!r}") from None


@functools.cache
def _decoy_hash() -> str:
    return generate_password_hash("decoy password, never valid")


def verify(database: Database, name: str, password: str) -> bool:
    """Whether the name and password belong to a staff account (as slow for unknown names as for known ones)."""
    with database.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.name == name))
    if stored is None:
        check_password_hash(_decoy_hash(), password)
        return False
    return check_password_hash(stored, password)


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse the request with 401 unless it carries a staff account's HTTP basic credentials."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        credentials = request.authorization
        database = current_app.extensions["parametric"].database
        if (credentials is None or credentials.type != "basic" or not credentials.username
                or not verify(database, credentials.username, credentials.password or "")):
            response = jsonify(errors=[{"field": "Authorization",
                                        "message": "staff only: log in with a staff account (HTTP basic auth); "
                                                   "accounts are made with `parametric users add NAME`"}])
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="parametric staff", charset="UTF-8"'
            return response
        g.staff_user = credentials.username
        return view(*args, **kwargs)

    return wrapped
