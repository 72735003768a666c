"""The 27 session actions of the Capture contract, run on a local Playwright page.

The package owns parsing an action request, validating each payload, running it on a
`SessionPage` and shaping the answer fields; it raises only `mock_server.errors` errors and
knows nothing of HTTP or session lifetime (the API layer adds `success` and
`expiresInSeconds`). What each payload accepts, where the contract is silent, is written in the
README ("Actions: payload fields the contract does not name"), and only there.

- `dispatch`: the action types, the request's top level, `run_action`, the handler table, batch
- `payload`: the field readers (typed value or a 400 naming the field)
- `viewport`: viewport options, validated on every action and applied where they apply
- `budget`: one action's deadline (shared with the one-shot endpoints)
- `navigation`: goto, back, forward, reload, error-page settling, the URL rule
- `interaction`: pointer, keyboard, forms, scroll and waiting
- `reading`: screenshot, title, url, cursor, snapshot, console, errors, content, query

It must not import `mock_server.app`, `routes` or anything above it (they import it).
"""

from __future__ import annotations

from mock_server.actions.dispatch import ActionType, parse_action_request, run_action
from mock_server.actions.navigation import check_url
from mock_server.page_text import html_to_markdown, html_to_text

__all__ = [
    "ActionType",
    "check_url",
    "html_to_markdown",
    "html_to_text",
    "parse_action_request",
    "run_action",
]
