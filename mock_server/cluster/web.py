"""The cluster's HTTP side: one middleware and `GET /__admin/cluster`.

The middleware (inside the error and admin guard middlewares, so its errors reach the error
middleware as `CaptureError`s; outside the one-shot replay, whose cursors it loads):

- answers the contract's 503 "Required backing service is unavailable" when Redis cannot be
  reached on a route that needs it, and makes `GET /__admin/health` say so (503, not ready);
- re-reads the shared manual clock before each request;
- answers `GET /__admin/usage` and `GET /__admin/sessions` for the whole cluster (the single
  instance's handlers read only its own registry);
- adds the actions counted during the request to the session records.
"""

from __future__ import annotations

import contextlib
import json

from aiohttp import web

from mock_server.cluster.clock import SharedClock
from mock_server.cluster.registry import ClusterRegistry
from mock_server.cluster.replay import ClusterReplayEngine
from mock_server.cluster.setup import CLUSTER
from mock_server.cluster.store import UNREACHABLE
from mock_server.errors import CaptureError
from mock_server.http import Handler, json_response
from mock_server.state import CLOCK, REGISTRY, REPLAY
from recorder.contract import SIGNED_PATH
from recorder.statuses import BACKING_SERVICE as BACKING_SERVICE_UNAVAILABLE


class BackingServiceError(CaptureError):
    """Redis (the shared store) cannot be reached (503)."""

    status = 503


HEALTH_PATH = "/__admin/health"


@web.middleware
async def cluster_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    app = request.app
    cluster = app[CLUSTER]
    if not cluster.address_known:
        cluster.learn_address(request)
    if request.path == HEALTH_PATH:
        return await health(request, handler)
    registry = app[REGISTRY]
    assert isinstance(registry, ClusterRegistry)
    try:
        clock = app[CLOCK]
        if isinstance(clock, SharedClock):
            await clock.refresh()
        engine = app[REPLAY].engine
        if (
            isinstance(engine, ClusterReplayEngine)
            and request.method == "GET"
            and SIGNED_PATH.match(request.path)
        ):
            await engine.pull_others()
        if request.method == "GET" and request.path == "/__admin/usage":
            return json_response({"success": True, "users": await registry.cluster_usage()})
        if request.method == "GET" and request.path == "/__admin/sessions":
            found = await registry.cluster_sessions()
            return json_response({"success": True, "count": len(found), "sessions": found})
        try:
            response = await handler(request)
        except BaseException:
            with contextlib.suppress(*UNREACHABLE):
                await registry.flush_pending()
            raise
        await registry.flush_pending()
        return response
    except UNREACHABLE as err:
        raise BackingServiceError(
            BACKING_SERVICE_UNAVAILABLE, detail=f"Redis at {cluster.store.url} is unreachable"
        ) from err


async def health(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The instance's health, plus the cluster's: not ready while Redis cannot be reached."""
    response = await handler(request)
    cluster = request.app[CLUSTER]
    reachable = await cluster.store.ping()
    if not isinstance(response, web.Response) or response.body is None:
        return response
    body = json.loads(bytes(response.body))  # type: ignore[arg-type]
    body["cluster"] = {"instance": cluster.instance_id, "redis": reachable}
    status = response.status
    if not reachable:
        body.update(success=False, status="degraded", error=BACKING_SERVICE_UNAVAILABLE)
        status = 503
    return json_response(body, status)


async def cluster_state(request: web.Request) -> web.Response:
    """`GET /__admin/cluster`: the live instances and their active session counts."""
    cluster = request.app[CLUSTER]
    found = await cluster.store.instances()
    live = [info for info in found.values() if info["alive"]]
    return json_response(
        {"success": True, "self": cluster.instance_id, "count": len(live), "instances": live}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/__admin/cluster", cluster_state)
