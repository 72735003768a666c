"""Capture's signed one-shot endpoints ("Core API"), on the shared local Chromium.

`GET /{key}/{hash}/{image|pdf|content|metadata|animated}?{query}` (reference section 6);
`setup_oneshot(app, browser, users)` registers the route. Each request is checked whole before
any browser work, then gets its own fresh browser context (closed in a `finally`) and one time
budget. Statuses and the options accepted without local effect are written in the README
("One-shot (signed URL) endpoints").

- `options`: the query, parsed and checked into typed options (no browser, no HTTP)
- `capture`: the captures on the browser (no HTTP)
- `routes`: the aiohttp handler, `setup_oneshot`, the fair capture slots (`CaptureSlots`) and
  the refusal of a URL that points at this server itself
- `cache`: identical requests answered from memory within the TTL (`fresh`, `timestamp`)
- `storage`: the local object store standing in for S3 (`fileName`, `s3Acl`, `s3Redirect`,
  `skipUpload`) and `GET /__storage/{key}`
- `batch`: `POST /batch-image|batch-pdf/{apiKey}`, run in the background on the same slots

It must not import `mock_server.app` (the app imports it).
"""

from __future__ import annotations

from mock_server.oneshot.routes import (
    ONESHOT_SLOTS,
    CaptureSlots,
    refuse_self,
    run_capture,
    setup_oneshot,
)

__all__ = ["ONESHOT_SLOTS", "CaptureSlots", "refuse_self", "run_capture", "setup_oneshot"]
