"""The browser pages: the shop and the staff dashboard, with sessions and CSRF protection.

``init_app`` sets the session's secret key (``SECRET_KEY`` in the configuration, else
``$PARAMETRIC_SECRET_KEY``, else a random key kept in the instance folder: give every
server of one shop the same key), makes the session cookie SameSite=Lax and, behind HTTPS,
Secure (:class:`SessionInterface`), trusts ``PROXY_COUNT`` proxies for the client's address
and scheme, protects every form with Flask-WTF's CSRF token
(the REST API, which uses tokens and HTTP auth instead of cookies, is exempt), and adds
security headers to the HTML pages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, Response, has_request_context, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

csrf = CSRFProtect()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure whenever the app is reached over HTTPS: ``SESSION_COOKIE_SECURE``
    when it is set, else when ``PREFERRED_URL_SCHEME`` is https or the request came over HTTPS (a trusted
    proxy's ``X-Forwarded-Proto`` included, see ``PROXY_COUNT``)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = app.config.get("SESSION_COOKIE_SECURE")
        if configured is not None:
            return bool(configured)
        return app.config.get("PREFERRED_URL_SCHEME") == "https" or (has_request_context() and request.is_secure)


def _secret_key(app: Flask) -> str:
    configured = app.config.get("SECRET_KEY") or os.environ.get("PARAMETRIC_SECRET_KEY")
    if configured:
        return str(configured)
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        # Written aside and linked into place: racing processes all end up reading the one key that won.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as handle:
            handle.write(secrets.token_hex(32))
        os.chmod(handle.name, 0o600)
        try:
            os.link(handle.name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(handle.name)
    return path.read_text().strip()


def import_map() -> Markup:
    """The import map that lets the vendored three.js add-ons find ``three`` in our static files (no user data)."""
    three = url_for("static", filename="vendor/three/build/three.module.min.js")
    return Markup(json.dumps({"imports": {"three": three}}))


def _content_security_policy() -> str:
    digest = base64.b64encode(hashlib.sha256(import_map().encode()).digest()).decode()
    return ("default-src 'self'; script-src 'self' 'sha256-" + digest + "'; style-src 'self'; img-src 'self' data: "
            "blob:; connect-src 'self' blob: data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'")


def init_app(app: Flask) -> None:
    """Sessions, CSRF (the REST API exempt), the pages' security headers and template globals; the
    blueprints themselves are registered by ``create_app``."""
    from . import api
    from .staff import api as staff_api

    app.secret_key = _secret_key(app)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a form stays valid as long as the session
    app.session_interface = SessionInterface()
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:  # the client's address and scheme as the trusted proxies saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    csrf.init_app(app)
    csrf.exempt(api.bp)
    csrf.exempt(staff_api.bp)
    app.jinja_env.globals["import_map"] = import_map

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Any:
        return render_template("error.html", title="This form has expired",
                               message="The form was sent without a valid security token (it may be older "
                                       "than your session, or sent from another site). Please go back, reload "
                                       "the page and try again."), 400

    @app.after_request
    def security_headers(response: Response) -> Response:
        if request.path.startswith("/api/") or not response.mimetype == "text/html":
            return response
        response.headers.setdefault("Content-Security-Policy", _content_security_policy())
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
