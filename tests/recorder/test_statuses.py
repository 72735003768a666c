"""The table of documented failures agrees with Capture's OpenAPI file, status for status, and
the README shows the table as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from recorder.statuses import (
    EXPIRES_IN,
    OAS,
    ROUTE_CALLS,
    SESSION,
    STATUSES,
    Route,
    markdown_table,
    route_of,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "tests" / "contract" / "sessions.openapi.yaml").read_text())
OPERATIONS = {
    Route.CREATE: ("/v1/sessions", "post"),
    Route.GET: ("/v1/sessions/{sessionId}", "get"),
    Route.CLOSE: ("/v1/sessions/{sessionId}", "delete"),
    Route.ACTION: ("/v1/sessions/{sessionId}/actions", "post"),
}


def resolve(node: dict) -> dict:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = SPEC["components"][kind][name]
    return node


def schema_fields(schema: dict) -> set[str]:
    """Every property a (composed) schema names."""
    schema = resolve(schema)
    found = set(schema.get("properties", {}))
    for part in ("allOf", "oneOf"):
        for sub in schema.get(part, []):
            found |= schema_fields(sub)
    return found


@pytest.mark.parametrize("route", list(OPERATIONS))
def test_every_documented_error_status_is_in_the_table_with_its_text(route):
    path, method = OPERATIONS[route]
    responses = SPEC["paths"][path][method]["responses"]
    errors = {int(code): resolve(r) for code, r in responses.items() if int(code) >= 400}
    assert set(STATUSES[route]) == set(errors)
    for status, response in errors.items():
        entry = STATUSES[route][status]
        body = response["content"]["application/json"]
        if entry.source == OAS:
            # The status's description, or the text of its example where it gives one.
            texts = {response["description"], body.get("example", {}).get("error")}
            assert entry.text in texts, (route, status)
        fields = schema_fields(body["schema"])
        assert set(entry.extra) <= fields, (route, status)
        # Where the schema has the session's fields, the table answers them.
        assert ({EXPIRES_IN, SESSION} <= fields) == ({EXPIRES_IN, SESSION} <= set(entry.extra))


def test_the_create_503_is_the_cdp_text_of_the_example():
    response = SPEC["paths"]["/v1/sessions"]["post"]["responses"]["503"]
    example = response["content"]["application/json"]["example"]
    assert STATUSES[Route.CREATE][503].text == example["error"]


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/v1/sessions", Route.CREATE),
        ("POST", "/v1/sessions/", Route.CREATE),
        ("GET", "/v1/sessions/sess_1", Route.GET),
        ("DELETE", "/v1/sessions/sess_1", Route.CLOSE),
        ("POST", "/v1/sessions/sess_1/actions", Route.ACTION),
        ("GET", "/key/abc/image", Route.ONESHOT),
        ("GET", "/key/abc/animated", Route.ONESHOT),
        ("GET", "/v1/sessions/sess_1/actions", None),
        ("GET", "/screenshot/devices", None),
        ("POST", "/key/abc/pdf", None),
    ],
)
def test_route_of_names_the_documented_route(method, path, route):
    assert route_of(method, path) is route


def test_every_route_has_a_call():
    assert set(ROUTE_CALLS) == set(Route) == set(STATUSES)


def test_the_readme_shows_the_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- statuses -->\n(.*?)\n<!-- /statuses -->", readme, re.S)
    assert table is not None, "README: the statuses table between <!-- statuses --> markers"
    assert table.group(1) == markdown_table()
