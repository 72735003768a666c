"""Capture's batch endpoints (reference 6.9): `POST /batch-image/{apiKey}` and
`POST /batch-pdf/{apiKey}`, and their progress at `GET /__admin/batches/{id}`.

A request is checked whole before anything runs: the `x-req-signature` header (HMAC-SHA256 of
the raw body keyed with the API secret, hex or base64; 401 otherwise), the body
`{"notification_uri"?: "...", "data": [{"url": "...", "options": {...}}, ...]}` (1 to
`max_items` items), each item as its one-shot endpoint checks it (a bad one is 400 naming its
index), and the notification URI (loopback only unless its host is allowed). The answer is 202
with the batch id; the items then run in the background, `concurrency` at a time per batch, each
in one of the shared one-shot capture slots (`routes.render`, waiting its turn), and go to the
object store as `s3Redirect` uploads do. An item that fails is reported and the others go on.
With `notification_uri`, the results (or each item's error) are POSTed there as JSON, without
following redirects. `BatchRunner` owns the tasks and the webhook client; the app opens and
closes it. With cassettes loaded, a recorded batch request is answered as recorded (matched on
path and body, after the signature check); in hybrid mode an unrecorded one runs live. Must not
import `mock_server.app`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from aiohttp import web

from mock_server.auth import Users
from mock_server.errors import BadRequestError, CaptureError, NotFoundError
from mock_server.http import json_response
from mock_server.json_body import parse_json
from mock_server.oneshot.options import PARSERS, Query
from mock_server.oneshot.routes import DEFAULT_TIMEOUT_S, CaptureSlots, points_at_self, render
from mock_server.oneshot.storage import (
    ObjectStore,
    StorageOptions,
    base_url,
    object_url,
    parse_storage,
    store,
)
from mock_server.routes import answer
from mock_server.signing import verify_body_signature
from mock_server.state import REPLAY
from recorder.contract import BATCH_ENDPOINTS, BATCH_SIGNATURE_HEADER
from recorder.verify import is_loopback_host

if TYPE_CHECKING:
    from mock_server.browser import BrowserManager
    from mock_server.clock import Clock

log = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 100
# Items of one batch rendering at once; all batches share the one-shot capture slots.
DEFAULT_CONCURRENCY = 2
KEEP_BATCHES = 1000
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(slots=True)
class BatchItem:
    index: int
    url: str
    raw_query: str
    options: Any
    storage: StorageOptions
    status: str = "queued"  # queued, running, done, failed
    result: dict[str, Any] | None = None


@dataclass(slots=True)
class Batch:
    id: str
    key: str
    endpoint: str
    created_at: float
    base_url: str
    items: list[BatchItem]
    notification_uri: str | None = None
    finished_at: float | None = None
    notification: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        found = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        for item in self.items:
            found[item.status] += 1
        return found

    @property
    def status(self) -> str:
        counts = self.counts()
        if self.finished_at is not None:
            return "completed"
        return "queued" if counts["queued"] == len(self.items) else "running"

    def results(self) -> list[dict[str, Any]]:
        return [item.result for item in self.items if item.result is not None]

    def notification_body(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "id": self.id,
            "type": self.endpoint,
            "status": self.status,
            "total": len(self.items),
            "succeeded": counts["done"],
            "failed": counts["failed"],
            "results": self.results(),
        }

    def progress(self) -> dict[str, Any]:
        return {
            **self.notification_body(),
            **self.counts(),
            "createdAt": self.created_at,
            "finishedAt": self.finished_at,
            "notificationUri": self.notification_uri,
            "notification": self.notification,
        }


def item_query(url: str, options: Any, index: int) -> str:
    """The one-shot query an item stands for: its options (booleans as true/false), then url."""
    where = f"data[{index}]"
    if not isinstance(url, str) or not url.strip():
        raise BadRequestError(f"{where}.url is required (a string)", index=index)
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise BadRequestError(f"{where}.options must be an object", index=index)
    pairs = []
    for name, value in options.items():
        if name == "url":
            continue  # the item's own url wins
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            text = str(int(value))
        elif isinstance(value, float | str):
            text = str(value)
        else:
            raise BadRequestError(
                f"{where}.options.{name} must be a string, number or boolean", index=index
            )
        pairs.append((name, text))
    pairs.append(("url", url))
    return urlencode(pairs, quote_via=quote)


class BatchRunner:
    def __init__(
        self,
        browser: BrowserManager,
        slots: CaptureSlots,
        objects: ObjectStore,
        clock: Clock,
        *,
        users: Users | None = None,
        max_items: int = DEFAULT_MAX_ITEMS,
        allowed_hosts: tuple[str, ...] = (),
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.browser = browser
        self.slots = slots
        self.objects = objects
        self.clock = clock
        self.users = users
        self.max_items = max_items
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.batches: OrderedDict[str, Batch] = OrderedDict()
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        tasks = [b.task for b in self.batches.values() if b.task is not None and not b.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- checking a request ----------------------------------------------------------------

    def check_notification_uri(self, value: Any) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequestError("notification_uri must be an http(s) URL")
        try:
            parts.port  # noqa: B018 (read for its check: a port that is not 0..65535 raises)
        except ValueError as err:
            raise BadRequestError(f"notification_uri has a bad port: {err}") from err
        host = parts.hostname.lower().rstrip(".")
        if not (is_loopback_host(host) or host.endswith(".localhost")) and (
            host not in self.allowed_hosts
        ):
            raise BadRequestError(
                f"notification_uri may only target a loopback address here; {host} is not one "
                "(serve --allow-webhook-host HOST allows it)"
            )
        return value

    def parse(self, request: web.Request, endpoint: str, key: str, body: Any) -> Batch:
        if not isinstance(body, dict):
            raise BadRequestError('Expected {"notification_uri"?: "...", "data": [...]}')
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise BadRequestError("data must be a non-empty list of {url, options} items")
        if len(data) > self.max_items:
            raise BadRequestError(
                f"data has {len(data)} items; a batch takes at most {self.max_items} "
                "(serve --batch-max)"
            )
        notify = self.check_notification_uri(body.get("notification_uri"))
        items = [self._item(request, endpoint, index, raw) for index, raw in enumerate(data)]
        return Batch(
            id="batch_" + uuid.uuid4().hex,
            key=key,
            endpoint=endpoint,
            created_at=self.clock.now(),
            base_url=base_url(request),
            items=items,
            notification_uri=notify,
        )

    def _item(self, request: web.Request, endpoint: str, index: int, raw: Any) -> BatchItem:
        if not isinstance(raw, dict):
            raise BadRequestError(f"data[{index}] must be an object {{url, options}}", index=index)
        url = raw.get("url")
        query_text = item_query(url, raw.get("options"), index)
        query = Query(query_text)
        try:
            options = PARSERS[endpoint](query, allow_file=self.browser.allow_file_urls)
            storage = parse_storage(query)
        except BadRequestError as err:
            raise BadRequestError(f"data[{index}]: {err.message}", index=index) from err
        if storage.skip_upload:
            raise BadRequestError(
                f"data[{index}]: skipUpload=true cannot be used in a batch (its results are "
                "the stored objects)",
                index=index,
            )
        if points_at_self(options.page.url, request):
            raise BadRequestError(
                f"data[{index}]: url points at this capture-replay server itself", index=index
            )
        return BatchItem(index, url, query_text, options, storage)

    # -- running ---------------------------------------------------------------------------

    def start(self, batch: Batch) -> None:
        self.batches[batch.id] = batch
        if len(self.batches) > KEEP_BATCHES:  # forget the oldest finished ones, never a running one
            finished = [b.id for b in self.batches.values() if b.finished_at is not None]
            for old in finished[: len(self.batches) - KEEP_BATCHES]:
                del self.batches[old]
        batch.task = asyncio.create_task(self._run(batch))

    async def _run(self, batch: Batch) -> None:
        turns = asyncio.Semaphore(self.concurrency)

        async def one(item: BatchItem) -> None:
            async with turns:
                await self._run_item(batch, item)

        await asyncio.gather(*(one(item) for item in batch.items))
        batch.finished_at = self.clock.now()
        if batch.notification_uri is not None:
            batch.notification = await self._notify(batch.notification_uri, batch)

    async def _run_item(self, batch: Batch, item: BatchItem) -> None:
        item.status = "running"
        head = {"index": item.index, "url": item.url}
        try:
            rendered = await render(
                self.browser, batch.endpoint, item.options, self.slots, self.timeout, patient=True
            )
            key = await store(
                self.objects, batch.key, batch.endpoint, item.raw_query, item.storage, rendered
            )
            assert key is not None
        except CaptureError as err:
            item.status = "failed"
            item.result = {**head, "success": False, "status": err.status, "error": err.message}
            return
        except Exception as err:  # one item's surprise must not stop the others
            log.exception("batch %s item %d failed", batch.id, item.index)
            item.status = "failed"
            item.result = {**head, "success": False, "status": 500, "error": repr(err)}
            return
        item.status = "done"
        item.result = {
            **head,
            "success": True,
            "key": key,
            "location": object_url(batch.base_url, key),
            "contentType": rendered.content_type,
            "size": len(rendered.body),
            "acl": item.storage.acl,
        }

    async def _notify(self, uri: str, batch: Batch) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
            )
        try:
            async with self._http.post(
                uri, json=batch.notification_body(), allow_redirects=False
            ) as response:
                await response.read()
                return {"status": response.status, "at": self.clock.now()}
        except (aiohttp.ClientError, TimeoutError) as err:
            return {"error": f"{type(err).__name__}: {err}", "at": self.clock.now()}


def setup_batches(app: web.Application, runner: BatchRunner) -> None:
    """Register the two batch endpoints and `GET /__admin/batches[/{id}]`."""

    async def submit(request: web.Request) -> web.StreamResponse:
        endpoint, key = request.match_info["endpoint"], request.match_info["api_key"]
        raw = await request.read()
        verify_body_signature(runner.users, key, request.headers.get(BATCH_SIGNATURE_HEADER), raw)
        engine = request.app[REPLAY].engine
        if engine is not None:  # a recorded batch answers as recorded (no items run, no webhook)
            outcome = engine.sessionless("POST", request.path, request.query_string, raw, "batch")
            replayed = await answer(request, outcome)
            if replayed is not None:
                return replayed
        batch = runner.parse(request, endpoint, key, parse_json(raw))
        runner.start(batch)
        return json_response(
            {
                "success": True,
                "id": batch.id,
                "status": batch.status,
                "total": len(batch.items),
                "progress": f"/__admin/batches/{batch.id}",
            },
            202,
        )

    async def one_batch(request: web.Request) -> web.Response:
        batch = runner.batches.get(request.match_info["batch_id"])
        if batch is None:
            raise NotFoundError("Batch not found")
        return json_response({"success": True, "batch": batch.progress()})

    async def all_batches(request: web.Request) -> web.Response:
        found = [
            {
                "id": b.id,
                "type": b.endpoint,
                "status": b.status,
                "total": len(b.items),
                **b.counts(),
            }
            for b in runner.batches.values()
        ]
        return json_response({"success": True, "count": len(found), "batches": found})

    endpoints = "|".join(BATCH_ENDPOINTS)
    app.router.add_post("/batch-{endpoint:(?:" + endpoints + ")}/{api_key}", submit)
    app.router.add_get("/__admin/batches", all_batches)
    app.router.add_get("/__admin/batches/{batch_id}", one_batch)
