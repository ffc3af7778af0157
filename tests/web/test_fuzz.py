"""Fuzzing the API from its own OpenAPI document with schemathesis (valid and invalid requests, on the WSGI app).

No request may end in a 5xx, and every answer must be one the document describes: its
status code, its content type and its body's schema. The document is the one an app
serves (so endpoints other blueprints document are fuzzed too); each case goes to the
test's own app, with a fresh database. (schemathesis' ``from_fixture`` loader does not
work with pytest 9, hence the document is fetched once at import.)
"""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

def _served_document() -> dict:
    folder = tempfile.mkdtemp(prefix="parametric-fuzz-")
    app = create_app({"INSTANCE_FOLDER": f"{folder}/instance", "OUTPUT_FOLDER": f"{folder}/output",
                      "DATABASE_URL": None, "REDIS_URL": None, "HUEY_FILE": None})
    return app.test_client().get("/api/v1/openapi.json").get_json()


DOCUMENT = _served_document()
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
          HealthCheck.data_too_large]
QUOTES = "/api/v1/quotes"

# Every operation but quotes: all phases (explicit examples, boundary-value coverage, random fuzzing).
everything_else = schemathesis.openapi.from_dict(DOCUMENT).exclude(path=QUOTES)
# A valid quote is a real CAD build (about a second): random fuzzing only, fewer examples.
quotes = schemathesis.openapi.from_dict(DOCUMENT).include(path=QUOTES)
quotes.config.phases.coverage.enabled = False


def _call(case, app, staff):
    headers = staff if case.path.startswith("/api/v1/staff") else None
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


def test_the_fuzzed_document_is_the_one_the_app_serves(client):
    assert client.get("/api/v1/openapi.json").get_json() == DOCUMENT


@everything_else.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=HEALTH)
def test_generated_requests_get_documented_answers_and_never_a_5xx(case, app, staff):
    _call(case, app, staff)


@quotes.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=HEALTH)
def test_generated_quotes_get_documented_answers_and_never_a_5xx(case, app, staff):
    _call(case, app, staff)
