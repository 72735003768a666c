"""What the instances of a cluster share, in Redis: the instance registry (heartbeat keys with a
TTL), session records, the per-user limit, the request queues that route actions to a session's
owner, the shared manual clock and the replay cursors.

Keys (all under `capture-replay:`):

- `instances` (hash id -> JSON: address, start time) and `instance:ID:alive` (a string with a TTL,
  renewed by the heartbeat: the instance is live while it exists);
- `instance:ID:requests` (a list): actions routed to that instance, one msgpack message each; the
  owner pops them in order (`BRPOP`) and pushes each answer on `reply:RID` (a list with a TTL)
  where the calling instance waits on it (`BLPOP`). Lists and a reply key rather than streams: a
  request is consumed once by its one owner and nobody needs its history, so a list is the
  smallest thing that serves (one command each way, no consumer groups to trim);
- `instance:ID:sessions` (a set): the active sessions it owns (freed when it dies);
- `session:SID` (a hash): the session record (user, owner, status, times, options, counters,
  breakdown as `b:TYPE:total|success|error`, billing);
- `user:USER:active` (a sorted set sid -> expiry time): the user's active sessions, a create's
  reservation included; the limit counts the members not yet expired, in a Lua script, so two
  instances can never both admit a 5th and a 6th;
- `active` (a sorted set sid -> expiry time) and `sessions` (sid -> start time): for expiry on the
  shared manual clock and for the cluster-wide admin listings; `closed` (sid -> close time) and
  `forgotten` (usage per user): finished sessions are forgotten after `--keep-closed`, their
  usage kept;
- `clock` (the shared manual clock) and the channel `clock:advanced`;
- `replay:...`: replay cursors and id mappings (`mock_server.cluster.replay`).

Finalizing (close, expiry, error) is a compare-and-set on the record's status in a Lua script: a
session is billed once whichever instances race to end it. Billing itself is computed by the
caller with `recorder.contract`; the scripts only store it.

Hand-written over redis-py's asyncio client (the `cluster` extra): no library offers this data
model, and each piece is one or two Redis commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What "Redis is unreachable" looks like from the client.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
PREFIX = "capture-replay:"
REPLY_TTL_SECONDS = 120

_RESERVE = """
local n = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
if n >= tonumber(ARGV[3]) then return n end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return -1
"""
_FINALIZE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'closeReason', ARGV[1], 'closedAt', ARGV[2],
           'billedCredits', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('SREM', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[4])
return 1
"""
# Forget a finished session past the retention window, once, keeping its usage.
_FORGET = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local found = redis.call('HMGET', KEYS[2], 'user', 'billedCredits', 'actionCount')
if found[1] then
  redis.call('HINCRBY', KEYS[3], found[1] .. ':sessions', 1)
  redis.call('HINCRBY', KEYS[3], found[1] .. ':creditsBilled', tonumber(found[2] or '0') or 0)
  redis.call('HINCRBY', KEYS[3], found[1] .. ':actions', tonumber(found[3] or '0') or 0)
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
"""
_PUSH_IF_ALIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""


def redacted(url: str) -> str:
    """`url` without its user and password (in the address or as `?password=`)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def key(*parts: str) -> str:
    return PREFIX + ":".join(parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ClusterStore:
    """One instance's view of the shared state: thin async methods over Redis commands."""

    def __init__(self, url: str, instance_id: str) -> None:
        # Shown in errors and logs: the URL without its password (`redis://:SECRET@host`).
        self.url = redacted(url)
        self.instance_id = instance_id
        # One retry without backoff lets a pooled connection broken by a Redis restart reconnect;
        # an unreachable Redis fails at once (503), not after redis-py's default backoff.
        common: dict[str, Any] = {
            "socket_connect_timeout": 1.0,
            "retry": Retry(NoBackoff(), 1),
            "health_check_interval": 0,
        }
        self.redis = aioredis.Redis.from_url(url, socket_timeout=5.0, **common)
        # Blocking pops wait longer than any socket timeout: a client of their own.
        self.blocking = aioredis.Redis.from_url(url, socket_timeout=None, **common)
        self._reserve = self.redis.register_script(_RESERVE)
        self._finalize = self.redis.register_script(_FINALIZE)
        self._push = self.redis.register_script(_PUSH_IF_ALIVE)
        self._forget = self.redis.register_script(_FORGET)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.blocking.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except UNREACHABLE:
            return False

    # -- instances -----------------------------------------------------------------------------

    async def heartbeat(self, info: dict[str, Any], ttl: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key("instance", self.instance_id, "alive"), b"1", px=int(ttl * 1000))
            pipe.hset(key("instances"), self.instance_id, json.dumps(info))
            await pipe.execute()

    async def leave(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key("instance", self.instance_id, "alive"))
            pipe.hdel(key("instances"), self.instance_id)
            pipe.delete(key("instance", self.instance_id, "requests"))
            await pipe.execute()

    async def instances(self) -> dict[str, dict[str, Any]]:
        """Every registered instance, with `alive` and its active session count."""
        found = await self.redis.hgetall(key("instances"))
        ids = sorted(_text(i) for i in found)
        async with self.redis.pipeline(transaction=False) as pipe:
            for iid in ids:
                pipe.exists(key("instance", iid, "alive"))
                pipe.scard(key("instance", iid, "sessions"))
            flags = await pipe.execute()
        result = {}
        for n, iid in enumerate(ids):
            info = json.loads(found[iid.encode()])
            info.update(alive=bool(flags[2 * n]), activeSessions=int(flags[2 * n + 1]))
            result[iid] = info
        return result

    async def forget_instance(self, instance_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(key("instances"), instance_id)
            pipe.delete(key("instance", instance_id, "requests"))
            pipe.delete(key("instance", instance_id, "sessions"))
            await pipe.execute()

    async def owned(self, instance_id: str) -> list[str]:
        return sorted(
            _text(s) for s in await self.redis.smembers(key("instance", instance_id, "sessions"))
        )

    async def is_alive(self, instance_id: str) -> bool:
        return bool(await self.redis.exists(key("instance", instance_id, "alive")))

    # -- sessions ------------------------------------------------------------------------------

    async def reserve(
        self, user: str, sid: str, now: float, until: float, limit: int
    ) -> int | None:
        """Hold a slot of `user`'s limit for `sid`; None when held, else the active count."""
        n = await self._reserve(
            keys=[key("user", user, "active")], args=[repr(now), repr(until), limit, sid]
        )
        return None if int(n) < 0 else int(n)

    async def unreserve(self, user: str, sid: str) -> None:
        await self.redis.zrem(key("user", user, "active"), sid)

    async def save_new(
        self, sid: str, record: dict[str, str], expires_at: float, started_at: float
    ) -> None:
        user, owner = record["user"], record["owner"]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key("session", sid), mapping=record)
            pipe.zadd(key("user", user, "active"), {sid: expires_at})
            pipe.zadd(key("active"), {sid: expires_at})
            pipe.zadd(key("sessions"), {sid: started_at})
            pipe.sadd(key("instance", owner, "sessions"), sid)
            await pipe.execute()

    async def load(self, sid: str) -> dict[str, str] | None:
        found = await self.redis.hgetall(key("session", sid))
        return {_text(k): _text(v) for k, v in found.items()} if found else None

    async def load_many(self, sids: Iterable[str]) -> list[dict[str, str]]:
        ids = list(sids)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hgetall(key("session", sid))
            found = await pipe.execute()
        return [{_text(k): _text(v) for k, v in f.items()} for f in found if f]

    async def all_ids(self) -> list[str]:
        return [_text(s) for s in await self.redis.zrange(key("sessions"), 0, -1)]

    async def due(self, now: float) -> list[str]:
        """Active sessions whose TTL has passed at `now`."""
        return [_text(s) for s in await self.redis.zrangebyscore(key("active"), "-inf", now)]

    async def finalize(
        self, sid: str, user: str, owner: str, status: str, closed_at: float, credits: int
    ) -> bool:
        """End an active session once: False when it had already ended (nothing changed)."""
        keys = [
            key("session", sid),
            key("user", user, "active"),
            key("active"),
            key("instance", owner, "sessions"),
            key("closed"),
        ]
        done = await self._finalize(keys=keys, args=[status, repr(closed_at), credits, sid])
        return bool(done)

    async def forget_closed(self, horizon: float) -> int:
        """Forget the sessions finished at or before `horizon` (their usage is kept)."""
        forgotten = 0
        for sid in await self.redis.zrangebyscore(key("closed"), "-inf", horizon):
            keys = [key("closed"), key("session", _text(sid)), key("forgotten"), key("sessions")]
            forgotten += await self._forget(keys=keys, args=[sid])
        return forgotten

    async def forgotten_usage(self) -> dict[str, dict[str, int]]:
        """Usage of the forgotten sessions, per user."""
        per_user: dict[str, dict[str, int]] = {}
        for name, value in (await self.redis.hgetall(key("forgotten"))).items():
            user, _, field = _text(name).rpartition(":")
            per_user.setdefault(user, {})[field] = int(value)
        return per_user

    def count_actions(self, pipe: Any, sid: str, counts: Iterable[tuple[str, bool]]) -> None:
        """Queue on `pipe` the counter increments of actions answered (type, ok)."""
        name = key("session", sid)
        for action_type, ok in counts:
            outcome = "success" if ok else "error"
            pipe.hincrby(name, "actionCount", 1)
            pipe.hincrby(name, "actionSuccessCount" if ok else "actionErrorCount", 1)
            pipe.hincrby(name, f"b:{action_type}:total", 1)
            pipe.hincrby(name, f"b:{action_type}:{outcome}", 1)

    # -- routing -------------------------------------------------------------------------------

    async def push_request(self, owner: str, message: dict[str, Any]) -> bool:
        """Queue `message` for `owner`; False when the owner is not alive (nothing queued)."""
        keys = [key("instance", owner, "alive"), key("instance", owner, "requests")]
        return bool(await self._push(keys=keys, args=[msgpack.packb(message)]))

    async def push_and_wait(
        self, owner: str, message: dict[str, Any], reply_id: str, timeout: float
    ) -> tuple[bool, dict[str, Any] | None]:
        """`push_request` and `wait_reply` in one round trip (one pipeline on the blocking
        client): whether it was queued, and the reply if it came within `timeout`. The script
        goes as EVAL, not as a registered script: a pipeline holding one first asks Redis
        `SCRIPT EXISTS`, a round trip more on every routed action."""
        keys = [key("instance", owner, "alive"), key("instance", owner, "requests")]
        async with self.blocking.pipeline(transaction=False) as pipe:
            pipe.eval(_PUSH_IF_ALIVE, len(keys), *keys, msgpack.packb(message))
            pipe.blpop([key("reply", reply_id)], timeout)
            pushed, found = await pipe.execute()
        return bool(pushed), None if found is None else msgpack.unpackb(found[1])

    async def pop_request(self, timeout: float) -> dict[str, Any] | None:
        found = await self.blocking.brpop([key("instance", self.instance_id, "requests")], timeout)
        return None if found is None else msgpack.unpackb(found[1])

    async def wait_reply(self, reply_id: str, timeout: float) -> dict[str, Any] | None:
        found = await self.blocking.blpop([key("reply", reply_id)], timeout)
        return None if found is None else msgpack.unpackb(found[1])

    def queue_reply(self, pipe: Any, reply_id: str, reply: dict[str, Any]) -> None:
        name = key("reply", reply_id)
        pipe.lpush(name, msgpack.packb(reply))
        pipe.expire(name, REPLY_TTL_SECONDS)

    # -- the shared manual clock ---------------------------------------------------------------

    async def clock_init(self, start: float) -> float:
        await self.redis.set(key("clock"), repr(start), nx=True)
        return await self.clock_now(start)

    async def clock_now(self, default: float) -> float:
        found = await self.redis.get(key("clock"))
        return default if found is None else float(found)

    async def clock_advance(self, seconds: float, start: float) -> float:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key("clock"), repr(start), nx=True)
            pipe.incrbyfloat(key("clock"), seconds)
            pipe.publish(key("clock", "advanced"), b"")
            results = await pipe.execute()
        return float(results[1])

    async def clock_set(self, now: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key("clock"), repr(now))
            pipe.publish(key("clock", "advanced"), b"")
            await pipe.execute()

    def clock_channel(self) -> str:
        return key("clock", "advanced")

    # -- reset ---------------------------------------------------------------------------------

    async def clear_sessions(self) -> None:
        """Forget every session and replay cursor (`POST /__admin/reset`); instances stay."""
        names = []
        for pattern in ("session:*", "user:*", "replay:*", "reply:*"):
            names += [n async for n in self.redis.scan_iter(match=PREFIX + pattern, count=500)]
        async for n in self.redis.scan_iter(match=PREFIX + "instance:*:sessions", count=500):
            names.append(n)
        names += [key("active"), key("sessions"), key("closed"), key("forgotten")]
        for start in range(0, len(names), 500):
            await self.redis.delete(*names[start : start + 500])
