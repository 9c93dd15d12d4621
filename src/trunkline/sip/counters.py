"""Call counts every SIP edge shares, in Redis: one atomic check-and-take per INVITE.

With TRUNKLINE_REDIS_URL set, the channel limits (account D1, outbound voice profile D2, connection
outbound D3 and inbound D4) and `calls_per_cld` (TL2) are counted here instead of in one Kamailio's
dialog profiles, so every edge on the deployment sees every call (docs/deploy.md).

Each concurrent-call counter is a sorted set: member = one call, score = when its lease lapses (ms, by
Redis's own clock, so edges with skewed clocks agree). A take first drops lapsed members, then checks
every limit and adds the call to every counter in one Lua script: scripts run atomically
(https://redis.io/docs/latest/develop/interactive/programmability/eval-intro/), so two INVITEs at two
edges never both take the last channel. The edge lists its calls in a hash of its own and renews their
leases every lease/3 seconds; a crashed edge renews nothing, and its calls age out of every count
within one lease. A call leaves its counters when its dialog ends or fails.

`calls_per_cld` counts calls started in a calling window, not calls up: a plain counter that lapses
when the window ends. The keys a script touches are not all named in KEYS (the renewal reads them from
the edge's hash), so a single Redis server is supported, not Redis Cluster.

Runs inside Kamailio's workers (sip/kamailio_app.py), each with its own connection made after the
fork; a Redis that does not answer within TIMEOUT_SECONDS raises Unavailable, and is left alone for
RETRY_SECONDS so that an outage costs the calls no waiting.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

TIMEOUT_SECONDS = 0.25
RETRY_SECONDS = 1.0

# KEYS[1]: the edge's hash of its calls; KEYS[2..n+1]: the call's counters; KEYS[n+2]: its
# calls_per_cld counter, if any. ARGV: lease ms, member, n, the n limits (-1: none), then the cld
# limit and the seconds until its window ends. Returns 0 when taken, else the 1-based position of the
# first counter at its limit (n+1: calls_per_cld).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
local member, n = ARGV[2], tonumber(ARGV[3])
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', now)
  local limit = tonumber(ARGV[3 + i])
  if limit >= 0 and redis.call('ZCARD', KEYS[i + 1]) >= limit then return i end
end
local cld = KEYS[n + 2]
if cld then
  local max = tonumber(ARGV[4 + n])
  if max >= 0 and tonumber(redis.call('GET', cld) or '0') >= max then return n + 1 end
end
local counters = {}
for i = 1, n do
  redis.call('ZADD', KEYS[i + 1], expiry, member)
  redis.call('PEXPIREAT', KEYS[i + 1], expiry)
  counters[i] = KEYS[i + 1]
end
if cld then
  redis.call('INCR', cld)
  redis.call('EXPIRE', cld, math.max(1, tonumber(ARGV[5 + n])))
end
redis.call('HSET', KEYS[1], member, cjson.encode(counters))
redis.call('PEXPIREAT', KEYS[1], expiry)
return 0
"""

# KEYS[1]: the edge's hash; ARGV[1]: the member. Returns 1 when the call was counted.
_RELEASE = """
local counters = redis.call('HGET', KEYS[1], ARGV[1])
if not counters then return 0 end
for _, key in ipairs(cjson.decode(counters)) do redis.call('ZREM', key, ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1]: the edge's hash; ARGV[1]: lease ms. Renews every call of the edge (XX: a call whose lease
# already lapsed stays out: it was no longer counted, and counting it again could pass a limit).
_RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local calls = redis.call('HGETALL', KEYS[1])
for i = 1, #calls, 2 do
  for _, key in ipairs(cjson.decode(calls[i + 1])) do
    redis.call('ZADD', key, 'XX', expiry, calls[i])
    redis.call('PEXPIREAT', key, expiry)
  end
end
if #calls > 0 then redis.call('PEXPIREAT', KEYS[1], expiry) end
return #calls / 2
"""


class Unavailable(Exception):
    """Redis did not answer; the caller applies TRUNKLINE_SIP_COUNTERS_UNAVAILABLE."""


@dataclass(frozen=True)
class Counter:
    """One limit a call counts against: `kind` names the counter family (CHANNEL_LIMITS in
    sip/policy.py), `id` its owner, `limit` -1 for none (the call is counted all the same, so that a
    limit set later sees the calls already up)."""

    kind: str
    id: str
    limit: int


@dataclass(frozen=True)
class CallsPerCld:
    key: str
    limit: int
    ttl_seconds: int


@dataclass(frozen=True)
class Over:
    """The take was refused: the call would pass this counter's limit (`kind`, or "cld")."""

    kind: str


class SharedCounters:
    """The Redis side of the edge's admission: take, release, renew."""

    def __init__(self, url: str, *, prefix: str, edge: str, lease_seconds: float) -> None:
        self.url = url
        self.prefix = prefix
        # One hash per Kamailio run: a restarted edge renews none of the calls its predecessor held.
        self.calls_key = f"{prefix}edge:{edge}"
        self.edge = edge
        self.lease_ms = int(lease_seconds * 1000)
        self._scripts: dict[str, Any] = {}
        self._pid = 0
        self._down_until = 0.0

    def take(self, call: str, counters: Sequence[Counter], cld: CallsPerCld | None) -> str | Over:
        """Count the call against every counter, or none if one is at its limit. Returns the member
        to release the call with."""
        member = f"{self.edge}:{call}"
        keys = [self.calls_key, *(self._counter_key(c) for c in counters)]
        args: list[Any] = [self.lease_ms, member, len(counters), *(c.limit for c in counters)]
        if cld is not None:
            keys.append(f"{self.prefix}cld:{cld.key}")
            args += [cld.limit, cld.ttl_seconds]
        over = int(self._run(_TAKE, keys, args))
        if over == 0:
            return member
        return Over(counters[over - 1].kind if over <= len(counters) else "cld")

    def release(self, member: str) -> bool:
        return bool(self._run(_RELEASE, [self.calls_key], [member]))

    def renew(self) -> int:
        """Renew the leases of every call this edge holds; how many."""
        return int(self._run(_RENEW, [self.calls_key], [self.lease_ms]))

    def _counter_key(self, counter: Counter) -> str:
        # JSON-quoted ids: an account id may hold any character, and a key must name one owner.
        return f"{self.prefix}calls:{counter.kind}:{json.dumps(counter.id)}"

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        if time.monotonic() < self._down_until:
            raise Unavailable(f"Redis at {redact(self.url)} failed less than {RETRY_SECONDS:.0f} s ago")
        try:
            return self._connection()[script](keys=keys, args=args)
        except redis.RedisError as exc:
            self._down_until = time.monotonic() + RETRY_SECONDS
            raise Unavailable(f"Redis at {redact(self.url)}: {exc}") from exc

    def _connection(self) -> dict[str, Any]:
        """The scripts, bound to this process's connection (redis-py runs them by SHA1, loading them
        again after a Redis restart: redis.commands.core.Script)."""
        # Made in the process that uses it: a connection opened before Kamailio forks would be shared
        # by every worker.
        if not self._scripts or self._pid != os.getpid():
            client = redis.Redis.from_url(
                self.url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
            )
            self._scripts = {text: client.register_script(text) for text in (_TAKE, _RELEASE, _RENEW)}
            self._pid = os.getpid()
        return self._scripts


def redact(url: str) -> str:
    """The URL without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':***@' if user else '***@'}{host}"
