"""The control API's connection to Redis (TRUNKLINE_REDIS_URL), shared by its journal and its faults.

Connected as the rate limits connect (http/ratelimit.py): the one URL setting, a pool of our own with
short timeouts and no retries (a retry would only lengthen an outage's cost to each request), and
after a failure the hot paths leave Redis alone for a few seconds, so an unreachable Redis costs a
/v2 request nothing rather than a timeout. The journal and the faults each log a warning at most once
a minute, the journal with the count of entries it lost.

The two sides fail differently: on a /v2 request's path (`up`, `failed`, `warn`) a failure is
swallowed, the request goes on without the journal or the faults; a control call (`answering`)
answers 503 instead, since a test reading the journal must not be told "empty" when it could not be
read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trunkline.errors import ServiceUnavailable

log = logging.getLogger("trunkline.control")

# Beside the rate limits' `trunkline` keys (http/ratelimit.py), apart from them.
PREFIX = "trunkline:control:"
_TIMEOUT = 0.5  # seconds, as http/ratelimit.py
_RETRY_AFTER_OUTAGE = 5.0  # seconds during which the hot paths do without Redis after a failure


def text(reply: object) -> str:
    """A reply as text: the pool does not decode (decode_responses off), entries are bytes."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


class RedisLink:
    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, retry=Retry(NoBackoff(), 0)
        )
        self.client = redis.asyncio.Redis(connection_pool=self._pool)
        self._down_until = -math.inf
        self._warned_at: dict[str, float] = {}
        self._error = ""

    def up(self) -> bool:
        """Whether the hot paths should ask Redis now (not within a few seconds of a failure)."""
        return time.monotonic() >= self._down_until

    def failed(self, exc: Exception) -> None:
        """A hot path's call failed: leave Redis alone for a while."""
        self._down_until = time.monotonic() + _RETRY_AFTER_OUTAGE
        self._error = f"{type(exc).__name__}: {exc}"

    def warn(self, part: str, consequence: str) -> None:
        """Say what `part` (the journal, the faults) does without Redis, at most once a minute each."""
        self.note(part, f"control API's Redis unreachable ({self._error}); {consequence}")

    def note(self, part: str, message: str) -> None:
        """A warning about `part`, logged at most once a minute: a hot path must not flood the log."""
        now = time.monotonic()
        if now - self._warned_at.get(part, -math.inf) >= 60:
            self._warned_at[part] = now
            log.warning("%s", message)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around a control call's Redis commands: an outage is a 503, in Telnyx's envelope (any other
        Redis error is a bug, and stays a 500)."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise ServiceUnavailable(
                f"The control API's Redis (TRUNKLINE_REDIS_URL) does not answer: {type(exc).__name__}."
            ) from None

    async def close(self) -> None:
        await self.client.aclose()
        await self._pool.disconnect()
