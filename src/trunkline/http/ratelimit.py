"""Request budgets with the `limits` library: per API key, and failed authentications per client address.

The algorithm is limits' moving window: it counts exactly the hits of the last window, so a budget never
admits a double burst across a window edge, and the wait it reports is the moment the oldest hit leaves
the window. Counters live in this process by default; with TRUNKLINE_REDIS_URL they live in Redis,
updated by limits' atomic Lua scripts, so every API instance draws on one budget.

In process, limits' synchronous memory storage is used (its calls are plain CPU work of microseconds),
with its clean-up of expired entries run at most once a second: as shipped, both flavours of that
storage start a sweep on almost every call (a new timer thread, or a task with a thread hop per key),
which cost more than the rest of a GET by id in profiles. Counting never depends on the sweep: the
moving window compares timestamps, the sweep only frees memory.

If Redis cannot be reached, requests are let through (and a warning is logged at most once a minute):
a counter outage must not take the API down with it. After a failure the counters are not asked again
for a few seconds, so an unreachable Redis costs each request nothing rather than a timeout.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

import limits
import redis.asyncio
from limits import strategies as sync_strategies
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.util import WindowStats

from trunkline.http import client_address

log = logging.getLogger("trunkline.ratelimit")

# The prefix of our keys in Redis and in limits' key names, apart from other users of the server.
_NAMESPACE = "trunkline"
_REDIS_TIMEOUT = 0.5  # seconds; past this a request goes on without the counter (see above)
_RETRY_AFTER_OUTAGE = 5.0  # seconds without asking the counters after they failed


@dataclass(frozen=True, slots=True)
class Window:
    """Where one budget stands after a request: the x-ratelimit-* headers Telnyx sends
    (https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float  # until the oldest hit leaves the window, i.e. until one more request fits

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_seconds)).encode()),
        ]


def retry_headers(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds (RFC 9110 §10.2.3) and retry-after-ms, which the Telnyx SDK
    prefers, so a sub-second window is not waited out as a full second."""
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


class _SweepEverySecond(MemoryStorage):
    """limits' MemoryStorage, sweeping expired entries at most once a second (see the module docstring)."""

    def __init__(self) -> None:
        self._next_sweep = 0.0
        super().__init__()

    # The storage's private hook, called by every operation (`self.__schedule_expiry()`); pinned by
    # tests/frontdoor/test_rate_limits.py so an upgrade of limits that renames it is noticed.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


class _InProcess:
    """limits' synchronous in-memory moving window behind the asyncio limiter's interface."""

    def __init__(self) -> None:
        self.storage = _SweepEverySecond()
        self._limiter = sync_strategies.MovingWindowRateLimiter(self.storage)

    async def hit(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        return self._limiter.hit(item, *identifiers)

    async def test(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        return self._limiter.test(item, *identifiers)

    async def get_window_stats(self, item: limits.RateLimitItem, *identifiers: str) -> WindowStats:
        return self._limiter.get_window_stats(item, *identifiers)


class RateLimits:
    """The two budgets. Build with `create()` inside the event loop that will use it."""

    def __init__(
        self,
        limiter: MovingWindowRateLimiter | _InProcess,
        *,
        rate: str,
        auth_failures_per_minute: int,
        pool: redis.asyncio.ConnectionPool | None = None,
    ) -> None:
        self._pool = pool
        self._limiter = limiter
        self._per_key = parse_rate(rate)
        self._failures = limits.RateLimitItemPerMinute(max(1, auth_failures_per_minute), namespace=_NAMESPACE)
        self.shared = pool is not None
        self._warned_at = -math.inf
        self._down_until = -math.inf

    @classmethod
    def create(cls, *, rate: str, auth_failures_per_minute: int, redis_url: str | None) -> RateLimits:
        if not redis_url:
            return cls(_InProcess(), rate=rate, auth_failures_per_minute=auth_failures_per_minute)
        # Our own pool, so the timeouts are ours and close() can release it.
        pool = redis.asyncio.ConnectionPool.from_url(
            redis_url, socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT
        )
        storage = RedisStorage(
            "async+" + redis_url,
            implementation="redispy",
            # A documented option (RedisStorage's docstring) that its `**options` annotation leaves out.
            connection_pool=pool,  # type: ignore[arg-type]
            key_prefix=_NAMESPACE,
            wrap_exceptions=True,
        )
        return cls(
            MovingWindowRateLimiter(storage),
            rate=rate,
            auth_failures_per_minute=auth_failures_per_minute,
            pool=pool,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    async def hit_key(self, key_id: str) -> Window | None:
        """Spend one request of a key's budget; None when the counters are unreachable."""
        if self._down():
            return None
        try:
            allowed = await self._limiter.hit(self._per_key, "key", key_id)
            stats = await self._limiter.get_window_stats(self._per_key, "key", key_id)
        except StorageError as exc:
            self._unavailable(exc)
            return None
        return Window(allowed, self._per_key.amount, max(0, stats.remaining), _until(stats.reset_time))

    async def peek_key(self, key_id: str) -> Window | None:
        """Where a key's budget stands, without spending from it."""
        if self._down():
            return None
        try:
            stats = await self._limiter.get_window_stats(self._per_key, "key", key_id)
        except StorageError as exc:
            self._unavailable(exc)
            return None
        allowed = stats.remaining > 0
        return Window(allowed, self._per_key.amount, max(0, stats.remaining), _until(stats.reset_time))

    async def failures_blocked(self, address: str | None) -> float | None:
        """Seconds until `address` may try a key again, or None when it has not failed too often."""
        if self._down():
            return None
        ident = bucket(address)
        try:
            if await self._limiter.test(self._failures, "auth-failure", ident):
                return None
            stats = await self._limiter.get_window_stats(self._failures, "auth-failure", ident)
        except StorageError as exc:
            self._unavailable(exc)
            return None
        return max(_until(stats.reset_time), 0.001)

    async def record_failure(self, address: str | None) -> float | None:
        """Count a failed authentication; the seconds until `address` may try again if it is now
        locked out, else None."""
        if self._down():
            return None
        ident = bucket(address)
        try:
            await self._limiter.hit(self._failures, "auth-failure", ident)
            stats = await self._limiter.get_window_stats(self._failures, "auth-failure", ident)
        except StorageError as exc:
            self._unavailable(exc)
            return None
        return max(_until(stats.reset_time), 0.001) if stats.remaining <= 0 else None

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        self._down_until = now + _RETRY_AFTER_OUTAGE
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("rate-limit counters unreachable (%s); letting requests through", type(exc).__name__)


def parse_rate(rate: str) -> limits.RateLimitItem:
    try:
        item = limits.parse(rate)
    except ValueError:
        raise ValueError(
            f"rate limit {rate!r} is not understood; write it like '1000/second' or '6000/minute'"
        ) from None
    return type(item)(item.amount, item.multiples, namespace=_NAMESPACE)


def bucket(address: str | None) -> str:
    """The unit failures are counted by: one IPv4 address, or one IPv6 /64 (a single host usually
    holds a whole /64, so counting single IPv6 addresses would not slow a guesser down)."""
    if address is None:
        return "unknown"
    if ":" not in address:
        return address  # IPv4, already canonical from the socket or client_address.resolve
    parsed = client_address.parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address


def _until(reset_time: float) -> float:
    return max(0.0, reset_time - time.time())
