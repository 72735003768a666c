"""Warnings, and strict mode, for MCP tool calls.

A tool call's findings are those of the REST request it stands for
(`recorder.findings.tool_findings`), and they are screened as the REST routes screen theirs
(`mock_server.field_warnings`): kept on the HTTP request that carried the call, so the warnings
middleware logs each distinct one once for `GET /__admin/warnings`, and under `serve --strict`
refused with the REST route's 400 text, which the tool answers as a tool error.

An MCP client shows a tool result's content ("what the LLM will see as the tool's output"), not
its `_meta`, so each finding is also one more text block at the end of its result (a tool
error's too, as a REST error answer carries its headers), worded as that header:
`X-Capture-Replay-Warning: <finding>`.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from aiohttp import web

from mock_server.field_warnings import FINDINGS, refused
from mock_server.state import CONFIG
from recorder.findings import Finding, header_values, tool_findings, unique
from recorder.records import WARNING_HEADER


def keep(request: web.Request, findings: list[Finding]) -> None:
    """Keep a call's findings on the HTTP request that carried it (for the warnings log)."""
    if findings:
        request[FINDINGS] = unique([*(request.get(FINDINGS) or []), *findings])


def warning_blocks(findings: list[Finding]) -> list[types.TextContent]:
    """The text blocks a tool result carries for these findings, one per finding."""
    return [types.TextContent(text=f"{WARNING_HEADER}: {v}") for v in header_values(findings)]


def replay_refusal(
    request: web.Request, tool: str, arguments: dict[str, Any], user: str
) -> dict[str, Any] | None:
    """A replayed tool call's findings, kept; the tool error body strict mode answers instead
    of the recording, or None."""
    findings = tool_findings(tool, arguments, user)
    keep(request, findings)
    refusing = refused(request.app[CONFIG].strict, findings)
    if not refusing:
        return None
    return {"status": 400, "success": False, "error": refusing[0].message}
