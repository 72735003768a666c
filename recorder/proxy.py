"""The recording reverse proxy: forwards every method and path to the upstream Capture API,
answers the client unchanged (status, headers minus hop-by-hop, body bytes, no decompression),
then redacts the exchange and appends it to the cassette. A `text/event-stream` answer (MCP's)
reaches the client as it arrives and is recorded whole when it ends (`recorder.event_stream`).

`make_proxy_app(config)` builds the aiohttp app; the upstream client (`recorder.upstream`, on
aiohttp's `ClientSession`), the `CassetteWriter` and the `Redactor` are owned by
`app.cleanup_ctx`. The upstream is asked only for the content-codings `recorder.bodies` can
decode, so that nothing stored is opaque to the secret scan. `run_proxy(config)` serves it
until SIGINT/SIGTERM, letting in-flight exchanges finish within `shutdown_timeout` plus a one
second grace before closing the cassette; an exchange still waiting on the upstream then is
recorded as interrupted (status 503 and the error), so the cassette says what happened.

Nothing is answered as recorded that was not: an append that fails (a full disk) answers that
client 503 JSON naming the cassette problem and is counted in `/__admin/health`; the next exchange
is recorded again once space returns. A cassette deleted or replaced under the recorder ends the
recording: every later request is answered 503, and health says so.

Must not import `mock_server`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from recorder import __version__
from recorder.bodies import accept_encoding
from recorder.cassette import CassetteWriter, WriteMode
from recorder.contract import DEFAULT_UPSTREAM, action_type_of, session_id_of
from recorder.errors import (
    CassetteError,
    CassetteReplacedError,
    CassetteWriteError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
)
from recorder.event_stream import EVENT_STREAM, ClientStream
from recorder.event_stream import connection_listed as _connection_listed
from recorder.findings import with_findings
from recorder.records import Interaction, RecordedRequest, RecordedResponse
from recorder.redaction import RedactionRules, Redactor
from recorder.upstream import DEFAULT_MAX_RESPONSE_BYTES, UpstreamClient, proxy_for

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_PORT",
    "DEFAULT_UPSTREAM",
    "HEALTH_PATH",
    "HOP_BY_HOP",
    "STATE_KEY",
    "ProxyConfig",
    "ProxyState",
    "Replayer",
    "make_proxy_app",
    "run_proxy",
    "serve_proxy",
]

DEFAULT_PORT = 8791
HEALTH_PATH = "/__admin/health"
log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 1.0  # seconds past --shutdown-timeout for answers already on their way
_BIG_BODY = 1 << 20  # records larger than this are redacted and written off the event loop
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Not hop-by-hop, but recomputed by the HTTP stack on each side; Accept-Encoding is replaced.
_REQUEST_SKIP = HOP_BY_HOP | {"host", "content-length", "expect", "accept-encoding"}
_RESPONSE_SKIP = HOP_BY_HOP | {"content-length"}
# A HEAD answer has no body to count, so the upstream's Content-Length is the only one there is.
_HEAD_RESPONSE_SKIP = HOP_BY_HOP
# A client sends the same Accept-Encoding on every request: work it out once per value.
_upstream_accept = functools.lru_cache(maxsize=64)(accept_encoding)


class Replayer(Protocol):
    """Answers what a cassette already has, so that only new episodes are forwarded and recorded
    (record mode `new_episodes`). Supplied by the caller; the proxy knows nothing of replay."""

    async def answer(
        self, method: str, target: str, headers: CIMultiDictProxy[str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """A recorded answer (status, headers, body), or None to forward and record."""
        ...

    def forwarded(self, interaction: Interaction) -> None:
        """Told of every exchange that went to the upstream (e.g. to learn new session ids)."""
        ...


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    cassette: Path
    upstream: str = DEFAULT_UPSTREAM
    mode: WriteMode = WriteMode.NEW
    redaction: RedactionRules = field(default_factory=RedactionRules)
    connect_timeout: float = 10.0
    timeout: float = 120.0  # total budget of one upstream exchange
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 = ephemeral
    fsync: bool = False
    max_body_bytes: int = 256 * 1024 * 1024  # cap on a request's body (the client gets 413)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # cap on an answer's body (502)
    shutdown_timeout: float = 10.0  # how long SIGINT/SIGTERM waits for exchanges in flight
    replayer: Replayer | None = field(default=None, compare=False)


@dataclass(slots=True)
class ProxyState:
    client: UpstreamClient
    writer: CassetteWriter
    redactor: Redactor
    base: str
    recorded: int = 0
    failures: int = 0
    in_flight: int = 0
    write_failures: int = 0  # appends that failed (a full disk...): those clients got a 503
    interrupted: int = 0  # exchanges cut by a stop, recorded as interrupted
    stopped: CassetteReplacedError | None = None  # recording is over: the cassette is gone


CONFIG_KEY = web.AppKey("proxy_config", ProxyConfig)
STATE_KEY = web.AppKey("proxy_state", ProxyState)


def _error_body(message: str) -> bytes:
    return json.dumps({"success": False, "error": message}).encode()


async def forward(request: web.Request) -> web.StreamResponse:
    """Proxy one exchange, record it, answer the client."""
    state = request.app[STATE_KEY]
    config = request.app[CONFIG_KEY]
    state.in_flight += 1
    try:
        # One coroutine, not a wrapper around a helper: each await level costs on every request.
        start = time.time()
        t0 = time.perf_counter()
        method = request.method
        body = await request.read()
        raw_target = request.raw_path
        in_headers = request.headers
        if config.replayer is not None:
            replayed = await config.replayer.answer(method, raw_target, in_headers, body)
            if replayed is not None:
                status, headers, answer = replayed
                return web.Response(status=status, body=answer, headers=CIMultiDict(headers))
        if state.stopped is not None:
            return _unrecordable(state.stopped)
        seq = state.writer.next_seq()
        path, _, query = raw_target.partition("?")
        in_items = tuple(in_headers.items())
        dropped = _REQUEST_SKIP
        if "Connection" in in_headers:
            dropped = dropped | _connection_listed(in_headers)
        out_headers = [(k, v) for k, v in in_items if k.lower() not in dropped]
        codings = ", ".join(in_headers.getall("Accept-Encoding", ())) or None
        out_headers.append(("Accept-Encoding", _upstream_accept(codings)))
        error: str | None = None
        # A client that accepts server-sent events (MCP) gets them as they come.
        streams = EVENT_STREAM in in_headers.get("Accept", "")
        sink = ClientStream(request, _RESPONSE_SKIP) if streams else None
        try:
            upstream = await state.client.request(method, raw_target, out_headers, body, sink)
            status, reason, raw, resp_body = (
                upstream.status,
                upstream.reason,
                upstream.headers,
                upstream.body,
            )
        except asyncio.CancelledError:
            # Stopped past the shutdown budget: the cassette says what happened.
            _record_interrupted(state, seq, start, method, path, query, in_items, body, t0)
            raise
        except UpstreamTimeoutError:
            status, reason = 504, "Gateway Timeout"
            error = f"upstream {state.base} did not answer within {config.timeout:g} s"
        except UpstreamError as err:
            status, reason = 502, "Bad Gateway"
            error = _failure(state.base, err)
        streamed = sink is not None and sink.response is not None
        if error is not None and sink is not None and streamed:  # cut mid-stream: keep what came
            state.failures += 1
            status, reason, raw = sink.status, sink.reason, sink.headers
            resp_body = b"".join(sink.chunks)
        elif error is not None:
            state.failures += 1
            resp_body = _error_body(error)
            raw = [("Content-Type", "application/json; charset=utf-8")]
        duration = time.perf_counter() - t0

        recorded_request = RecordedRequest(
            method=method, path=path, query=query, headers=in_items, body=body
        )
        recorded_response = RecordedResponse(
            status=status, headers=tuple(raw), body=resp_body, reason=reason
        )
        live = Interaction(
            seq=seq,
            start=start,
            duration=duration,
            session_id=session_id_of(recorded_request, recorded_response),
            action_type=action_type_of(method, path, body),
            user=None,
            request=recorded_request,
            response=recorded_response,
            error=error,
        )
        # Written (and flushed to the OS) just before the answer leaves: an exchange the client
        # saw answered is in the file even if the recorder is killed the next instant.
        try:
            if len(body) + len(resp_body) > _BIG_BODY:
                await asyncio.to_thread(_record, state, live)
            else:
                _record(state, live)
        except CassetteWriteError as err:
            # Not recorded, so not answered as if it were: the client learns why (a full disk
            # is retried on the next exchange; a deleted cassette ends the recording).
            state.write_failures += 1
            if isinstance(err, CassetteReplacedError):
                state.stopped = err
                log.error("recording stopped: %s", err)
            if sink is not None and streamed:  # already answered: it can only be logged
                log.error("a streamed answer could not be recorded: %s", err)
                return await sink.end()
            return _unrecordable(err)
        if config.replayer is not None:
            config.replayer.forwarded(live)
        if sink is not None and streamed:
            return await sink.end()
        skip = _RESPONSE_SKIP if method != "HEAD" else _HEAD_RESPONSE_SKIP
        lowered = [k.lower() for k, _ in raw]
        if "connection" in lowered:
            skip = skip | _connection_listed(CIMultiDict(raw))
        return web.Response(
            status=status,
            reason=reason or None,
            body=resp_body,
            headers=CIMultiDict(
                [kv for kv, low in zip(raw, lowered, strict=True) if low not in skip]
            ),
        )
    finally:
        state.in_flight -= 1


def _failure(base: str, err: UpstreamError) -> str:
    """The error message of a 502 answer, naming the upstream."""
    if isinstance(err, UpstreamConnectError):
        return f"upstream {base} unreachable: {err}"
    if isinstance(err, UpstreamTooLargeError):
        return f"answer from upstream {base} refused: {err}"
    return f"upstream {base} broke the exchange: {err}"


def _unrecordable(err: CassetteError) -> web.Response:
    """The 503 a client gets for an exchange that could not be recorded."""
    return web.Response(
        status=503,
        body=_error_body(f"capture-replay could not record this exchange: {err}"),
        content_type="application/json",
    )


def _record_interrupted(
    state: ProxyState,
    seq: int,
    start: float,
    method: str,
    path: str,
    query: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    t0: float,
) -> None:
    error = f"interrupted: the recorder stopped before upstream {state.base} answered"
    request = RecordedRequest(method=method, path=path, query=query, headers=headers, body=body)
    response = RecordedResponse(
        status=503,
        headers=(("Content-Type", "application/json; charset=utf-8"),),
        body=_error_body(error),
        reason="Service Unavailable",
    )
    item = Interaction(
        seq=seq,
        start=start,
        duration=time.perf_counter() - t0,
        session_id=session_id_of(request, response),
        action_type=action_type_of(method, path, body),
        user=None,
        request=request,
        response=response,
        error=error,
    )
    try:
        _record(state, item)
        state.interrupted += 1
    except (
        CassetteError
    ) as err:  # the cassette is already closed or gone: say so, lose nothing else
        log.error("could not record the interrupted exchange #%d: %s", seq, err)


def _record(state: ProxyState, live: Interaction) -> None:
    # The stored answer keeps what in the request the real API may not know (the real API
    # sends no X-Capture-Replay-Warning; an emulator upstream's own header is kept as sent).
    state.writer.append(state.redactor.redact(with_findings(live)))
    state.recorded += 1


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    config = request.app[CONFIG_KEY]
    stats = state.redactor.stats
    return web.json_response(
        {
            "success": state.stopped is None,
            "role": "recorder",
            "version": __version__,
            "upstream": state.base,
            "cassette": str(config.cassette),
            "recording": state.stopped is None,
            "cassetteError": str(state.stopped) if state.stopped is not None else None,
            "recorded": state.recorded,
            "failures": state.failures,
            "writeFailures": state.write_failures,
            "interrupted": state.interrupted,
            "inFlight": state.in_flight,
            "redaction": {
                "records": stats.records,
                "leaksCaught": stats.leaks_caught,
                "secretsScrubbed": stats.secrets_scrubbed,
            },
        }
    )


def _resources(config: ProxyConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # The proxy variables are read here, once (see recorder.upstream).
        client = UpstreamClient(
            config.upstream,
            connect_timeout=config.connect_timeout,
            timeout=config.timeout,
            max_response_bytes=config.max_response_bytes,
            proxy=proxy_for(config.upstream),
        )
        try:
            writer = CassetteWriter(
                config.cassette, upstream=config.upstream, mode=config.mode, fsync=config.fsync
            )
            try:
                app[STATE_KEY] = ProxyState(
                    client=client,
                    writer=writer,
                    redactor=Redactor(config.redaction),
                    base=config.upstream.rstrip("/"),
                )
                yield
            finally:
                writer.close()
        finally:
            await client.close()

    return ctx


def make_proxy_app(config: ProxyConfig) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG_KEY] = config
    app.cleanup_ctx.append(_resources(config))
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def run_proxy(
    config: ProxyConfig,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve until `stop` is set or SIGINT/SIGTERM arrives, then drain and close the cassette."""
    stop = stop or asyncio.Event()
    runner = web.AppRunner(
        make_proxy_app(config),
        shutdown_timeout=config.shutdown_timeout + SHUTDOWN_GRACE,
        access_log=None,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        for sig in (signal.SIGINT, signal.SIGTERM) if handle_signals else ():
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                pass
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")
        await stop.wait()
        if on_stopping is not None:
            on_stopping(runner.app[STATE_KEY].in_flight)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def serve_proxy(
    config: ProxyConfig,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
) -> None:
    """Blocking entry point for the CLI; uses uvloop when it is installed."""
    coro: Awaitable[None] = run_proxy(config, on_ready=on_ready, on_stopping=on_stopping)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]
