"""One HTTP attempt: POST the body, wait at most the timeout for the whole exchange, read at most a
few KB of the answer, follow no redirect, connect only where webhooks/addresses.py allows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpcore
import httpx

from trunkline.webhooks import addresses

# What a receiver may send back that we read (and then drop): a receiver owes us only its status.
MAX_RESPONSE_BYTES = 64 * 1024
# The headers Telnyx sends besides the signature
# (https://developers.telnyx.com/docs/voice/programmable-voice/voice-api-webhooks).
BASE_HEADERS = {"content-type": "application/json", "user-agent": "telnyx-webhooks"}


@dataclass(frozen=True)
class Result:
    status_code: int | None  # None: no HTTP answer
    latency_ms: int
    error: str | None
    # The URL may not receive events (its scheme, or its address: webhooks/addresses.py): nothing was
    # sent, and trying again would not change that.
    blocked: bool = False


def client(
    max_connections: int, *, allow_private: bool = False, resolver: addresses.Resolver | None = None
) -> httpx.AsyncClient:
    """The worker's HTTP client: no redirects, no proxy or .netrc from the environment (a proxy would
    make the connection, and the address check, its own), every connection through the check."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=_guarded_transport(
            limits,
            addresses.GuardedBackend(allow_private=allow_private, resolver=resolver or addresses.resolve),
        ),
        follow_redirects=False,
        trust_env=False,
        timeout=None,  # the whole attempt is bounded in `post` instead
    )


def _guarded_transport(
    limits: httpx.Limits, backend: httpcore.AsyncNetworkBackend
) -> httpx.AsyncHTTPTransport:
    """httpx's transport on a connection pool that connects through `backend`.

    httpx takes no network backend, so its transport's pool (`_pool`, httpcore's AsyncConnectionPool,
    made with these arguments in httpx/_transports/default.py) is replaced by one that has it. Should a
    later httpx build it otherwise, the worker stops at its start rather than connect unchecked, and
    tests/webhooks/test_addresses.py fails."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    if not isinstance(transport._pool, httpcore.AsyncConnectionPool):
        raise RuntimeError("httpx's transport has no httpcore pool: webhook addresses cannot be checked")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Result:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    if not url.lower().startswith(("http://", "https://")):  # a row written before URLs were checked
        return Result(None, 0, "refused: only http and https URLs receive events", blocked=True)
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(
                "POST", url, content=body, headers={**BASE_HEADERS, **headers}
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
    except addresses.Refused as exc:
        return Result(None, took(), str(exc), blocked=True)
    except TimeoutError:
        return Result(None, took(), f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Result(None, took(), f"{type(exc).__name__}: {exc}"[:255])
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Result(status, took(), error)
