"""Validate answers against the schemas of Capture's own OpenAPI file (a copy of
`shared/capture-api/sessions.openapi.yaml`), converted from OpenAPI 3.0 to JSON Schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC = Path(__file__).with_name("sessions.openapi.yaml")

ACTION_SCHEMAS = {
    "goto": "GotoActionResponse",
    "click": "GotoActionResponse",
    "hover": "GotoActionResponse",
    "screenshot": "ScreenshotActionResponse",
    "content": "ContentActionResponse",
    "query": "QueryActionResponse",
}


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("example", "nullable")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    return out


@cache
def _root() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    return {"components": {"schemas": _to_json_schema(spec["components"]["schemas"])}}


def validate(body: Any, schema_name: str) -> None:
    """Raise jsonschema.ValidationError unless `body` fits `#/components/schemas/<name>`."""
    schema = {**_root(), "$ref": f"#/components/schemas/{schema_name}"}
    jsonschema.Draft7Validator(schema).validate(body)


def action_schema(action_type: str) -> str:
    return ACTION_SCHEMAS.get(action_type, "GenericActionResponse")
