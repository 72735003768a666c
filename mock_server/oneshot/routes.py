"""The HTTP face of the one-shot endpoints: `setup_oneshot` registers
`GET /{key}/{hash}/{image|pdf|content|metadata|animated}?{query}` on the app.

Every request is checked (signature, then every option) before any browser work; a `url` that
points at this server itself (its port on a loopback or own address) is refused (400: nested
one-shots would hold every slot waiting on each other). Then it waits its turn for a capture slot
(`CaptureSlots`: first come, first served; 503 when the queue is full or the wait runs out) and
runs within one time budget (`timeout`, delay and the wait for a slot included): past it 504.
An identical request within the cache's TTL is answered from `OneshotCache` without a page
(journal source `cache`; `fresh=true` renders anew); image, pdf and animated captures then go
through the object store (`storage.deliver`: stored unless `skipUpload`, 302 with `s3Redirect`).
`render` is the capture the batch endpoints share. Errors are raised as `mock_server.errors`
ones for the app's error middleware to answer. Must not import `mock_server.app` (it imports
this).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psutil
from aiohttp import web
from playwright.async_api import Error as PlaywrightError

from mock_server.actions.budget import Budget
from mock_server.auth import Users
from mock_server.browser import error_message
from mock_server.errors import ActionTimeoutError, BadRequestError, CaptureBusyError, CaptureError
from mock_server.http import JSON_TYPE, json_response
from mock_server.oneshot.cache import OneshotCache, Rendered, cache_key
from mock_server.oneshot.capture import (
    capture_animated,
    capture_content,
    capture_image,
    capture_metadata,
    capture_pdf,
)
from mock_server.oneshot.options import (
    ENDPOINTS,
    IMAGE_CONTENT_TYPES,
    PARSERS,
    AnimatedOptions,
    ImageOptions,
    PdfOptions,
    Query,
)
from mock_server.oneshot.storage import STORED_ENDPOINTS, ObjectStore, deliver, parse_storage
from mock_server.signing import verify_signature
from mock_server.state import SOURCE

if TYPE_CHECKING:
    from mock_server.browser import BrowserManager

DEFAULT_TIMEOUT_S = 90.0
# Concurrent one-shot captures by default; more wait their turn (inside their own time budget).
MAX_CONCURRENT = 4


class CaptureSlots:
    """`slots` captures at once; the others wait first come, first served, at most `queue` of
    them and each at most `wait` seconds; otherwise CaptureBusyError (503)."""

    def __init__(self, slots: int = MAX_CONCURRENT, queue: int = 16, wait: float = 30.0) -> None:
        self.slots = max(1, slots)
        self.queue = max(0, queue)
        self.wait = wait
        self._free = asyncio.Semaphore(self.slots)  # FIFO: waiters are woken in order
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self, *, patient: bool = False) -> AsyncIterator[None]:
        """A capture slot; `patient` (a batch item, already bounded by its batch) waits its turn
        however long, outside the queue's bound."""
        if patient:
            async with self._free:
                yield
            return
        if self._free.locked() and self.waiting >= self.queue:
            raise CaptureBusyError(
                f"All {self.slots} one-shot capture slots are busy and {self.waiting} captures "
                "already wait (this local server's queue is full); retry later"
            )
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait):
                await self._free.acquire()
        except TimeoutError as err:
            raise CaptureBusyError(
                f"No one-shot capture slot became free within {self.wait:g} s "
                f"({self.slots} busy); retry later"
            ) from err
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._free.release()


# The app's capture slots, shared by the HTTP route and the MCP capture tools.
ONESHOT_SLOTS = web.AppKey("capture_oneshot_slots", CaptureSlots)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the shorthands a browser accepts too: 127.1, 0x7f.1, 2130706433
        return ipaddress.ip_address(socket.inet_aton(host))
    except OSError:
        return None


def _local_addresses() -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for addresses in psutil.net_if_addrs().values():
            found.update(a.address.split("%")[0] for a in addresses)
    return found


def points_at_self(url: str, request: web.Request) -> bool:
    """Whether `url` reaches this server: its port, on a loopback, unspecified, bound or
    requested host, or (bound to all interfaces) any of the machine's addresses."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return False
    own_host, own_port = str(sockname[0]), int(sockname[1])
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return False
    if port != own_port:
        return False
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host == request.url.host:
        return True
    address = _address(host)
    if address is None:
        return False
    if address.is_loopback or address.is_unspecified or str(address) == own_host:
        return True
    bound = _address(own_host)
    return bound is not None and bound.is_unspecified and str(address) in _local_addresses()


async def _capture(
    browser: BrowserManager, endpoint: str, options: Any, budget: Budget
) -> tuple[str, bytes | dict[str, Any]]:
    """(content type, bytes) of an image, PDF or GIF; ("application/json", body) otherwise."""
    if isinstance(options, ImageOptions):
        data = await capture_image(browser, options, budget)
        return IMAGE_CONTENT_TYPES[options.type], data
    if isinstance(options, PdfOptions):
        return "application/pdf", await capture_pdf(browser, options, budget)
    if isinstance(options, AnimatedOptions):
        return "image/gif", await capture_animated(browser, options, budget)
    if endpoint == "content":
        return JSON_TYPE, await capture_content(browser, options, budget)
    return JSON_TYPE, await capture_metadata(browser, options, budget)


async def run_capture(
    browser: BrowserManager,
    slots: CaptureSlots,
    endpoint: str,
    options: Any,
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    patient: bool = False,
) -> tuple[str, bytes | dict[str, Any]]:
    """One checked one-shot capture in its turn for a slot, within one time budget (the HTTP
    route, the batch endpoints and the MCP capture tools share it). For a one-shot the wait for
    the slot is part of the budget; a `patient` batch item waits its turn first, then gets the
    whole budget."""
    try:
        if patient:
            async with slots.slot(patient=True), asyncio.timeout(timeout):
                return await _capture(browser, endpoint, options, Budget.start(timeout))
        budget = Budget.start(timeout)
        async with asyncio.timeout(timeout), slots.slot():
            return await _capture(browser, endpoint, options, budget)
    except TimeoutError as err:
        raise ActionTimeoutError(
            f"The {endpoint} capture exceeded its {timeout:g} s budget"
        ) from err
    except PlaywrightError as err:
        raise CaptureError(f"The {endpoint} capture failed: {error_message(err)}") from err


def refuse_self(url: str, request: web.Request) -> None:
    """400 for a `url` that reaches this server itself."""
    if points_at_self(url, request):
        raise BadRequestError(
            "url points at this capture-replay server itself (its own host and port); a "
            "one-shot of a one-shot would hold a capture slot waiting for another"
        )


async def render(
    browser: BrowserManager,
    endpoint: str,
    options: Any,
    slots: CaptureSlots,
    timeout: float,
    *,
    patient: bool = False,
) -> Rendered:
    """`run_capture` as the bytes and content type answered over HTTP (content and metadata
    encoded as their JSON answer is): what the cache, the object store and batches keep."""
    content_type, body = await run_capture(
        browser, slots, endpoint, options, timeout, patient=patient
    )
    if isinstance(body, dict):
        response = json_response(body)
        assert isinstance(response.body, bytes) and response.content_type
        return Rendered(response.body, response.content_type)
    return Rendered(body, content_type)


def setup_oneshot(
    app: web.Application,
    browser: BrowserManager,
    users: Users | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    slots: CaptureSlots | None = None,
    cache: OneshotCache | None = None,
    objects: ObjectStore | None = None,
) -> None:
    """Register `GET /{key}/{hash}/{endpoint}` for the five one-shot endpoints."""
    capture_slots = app[ONESHOT_SLOTS] = slots or CaptureSlots()
    allow_file = browser.allow_file_urls

    async def handle(request: web.Request) -> web.Response:
        info = request.match_info
        raw_query = request.raw_path.partition("?")[2]
        verify_signature(users, info["key"], info["hash"], raw_query)
        endpoint = info["endpoint"]
        # Every option is checked before waiting for a slot or touching the browser.
        query = Query(raw_query)
        options = PARSERS[endpoint](query, allow_file=allow_file)
        storing = parse_storage(query) if endpoint in STORED_ENDPOINTS else None
        refuse_self(getattr(options, "page", options).url, request)
        key = cache_key(info["key"], endpoint, raw_query)
        rendered = None
        if cache is not None and cache.enabled and not query.flag("fresh"):
            rendered = cache.get(key)
        if rendered is not None:
            request[SOURCE] = "cache"
        else:
            rendered = await render(browser, endpoint, options, capture_slots, timeout)
            if cache is not None:
                cache.put(key, rendered)
        if objects is None:
            return web.Response(body=rendered.body, content_type=rendered.content_type)
        return await deliver(request, objects, storing, rendered)

    app.router.add_get("/{key}/{hash}/{endpoint:(?:" + "|".join(ENDPOINTS) + ")}", handle)
    if cache is not None:
        add_cache_admin(app, cache)


def add_cache_admin(app: web.Application, cache: OneshotCache) -> None:
    """`GET /__admin/oneshot-cache` (its size and hits) and `DELETE` (empty it)."""

    async def cache_state(request: web.Request) -> web.Response:
        return json_response({"success": True, **cache.stats()})

    async def cache_clear(request: web.Request) -> web.Response:
        return json_response({"success": True, "removed": cache.clear()})

    app.router.add_get("/__admin/oneshot-cache", cache_state)
    app.router.add_delete("/__admin/oneshot-cache", cache_clear)
