"""The MCP tools' input schemas come from the one table of request fields (`recorder.fields`):
each capture tool takes exactly the names its one-shot endpoint accepts (one name per option, no
aliases), `browser_session_create` the create body's and `browser_session_act` the action
request's, typed as the REST parsers read them; every schema is valid JSON Schema. Each tool
call stands for one REST request (what fault rules match it on)."""

from __future__ import annotations

import jsonschema

from recorder import fields
from recorder.mcp_tools import (
    ACT,
    CAPTURE_ENDPOINTS,
    CLOSE,
    CREATE,
    GET,
    PDF,
    SCREENSHOT,
    TOOL_NAMES,
    RestCall,
    input_schemas,
    rest_call,
)
from recorder.statuses import Route, route_of

SCHEMAS = input_schemas(["goto", "screenshot"], 900)


def test_capture_tools_take_the_names_of_their_endpoints_field_table():
    for tool, endpoint in CAPTURE_ENDPOINTS.items():
        table = fields.ONESHOT[endpoint]
        aliases = {a for name in table.accepted for a in table.names(name)[1:]}
        assert set(SCHEMAS[tool]["properties"]) == set(table.accepted) - aliases, tool
        assert SCHEMAS[tool]["required"] == ["url"]
    assert "fullPage" not in SCHEMAS[SCREENSHOT]["properties"]  # an alias of full
    assert "skipUpload" not in SCHEMAS[PDF]["properties"]  # not a pdf option


def test_session_tools_take_the_create_and_action_request_fields():
    assert set(SCHEMAS[CREATE]["properties"]) == set(fields.CREATE.accepted)
    assert set(SCHEMAS[ACT]["properties"]) == {"sessionId", *fields.ACTION_REQUEST.accepted}
    assert SCHEMAS[ACT]["properties"]["type"]["enum"] == ["goto", "screenshot"]
    assert SCHEMAS[CREATE]["properties"]["maxTtlSeconds"]["maximum"] == 900
    assert SCHEMAS[CREATE]["properties"]["cdp"] == {"type": "boolean"}
    assert SCHEMAS[GET]["required"] == ["sessionId"]


def test_options_are_typed_as_the_parsers_read_them_and_schemas_are_valid():
    image, pdf = SCHEMAS[SCREENSHOT]["properties"], SCHEMAS[PDF]["properties"]
    assert image["width"] == {"type": "integer"} and image["full"] == {"type": "boolean"}
    assert pdf["width"]["type"] == ["string", "number"]  # a CSS length there
    assert pdf["scale"] == {"type": "number"} and pdf["format"] == {"type": "string"}
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False


def test_each_tool_call_stands_for_the_rest_request_it_runs():
    sid = "sess_a/b"
    calls = {
        tool: rest_call(tool, {"sessionId": sid, "type": "click"}, "u 1") for tool in TOOL_NAMES
    }
    assert calls[CREATE] == RestCall("POST", "/v1/sessions")
    assert calls[ACT] == RestCall("POST", "/v1/sessions/sess_a%2Fb/actions", "click", sid)
    assert calls[GET] == RestCall("GET", "/v1/sessions/sess_a%2Fb", session=sid)
    assert calls[CLOSE] == RestCall("DELETE", "/v1/sessions/sess_a%2Fb", session=sid)
    assert calls[PDF] == RestCall("GET", "/u%201/mcp/pdf", endpoint="pdf")
    routes = {tool: route_of(c.method, c.path) for tool, c in calls.items() if c is not None}
    assert routes == {
        CREATE: Route.CREATE,
        ACT: Route.ACTION,
        GET: Route.GET,
        CLOSE: Route.CLOSE,
        **dict.fromkeys(CAPTURE_ENDPOINTS, Route.ONESHOT),
    }
    assert rest_call("capture_everything", {}, "u") is None
