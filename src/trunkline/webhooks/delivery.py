"""One HTTP attempt: POST the body, wait at most the timeout for the whole exchange, read at most a
few KB of the answer, follow no redirect."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

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


def client(max_connections: int) -> httpx.AsyncClient:
    """The worker's HTTP client: no redirects, no proxy or .netrc from the environment."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=None,  # the whole attempt is bounded in `post` instead
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Result:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

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
    except TimeoutError:
        return Result(None, took(), f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Result(None, took(), f"{type(exc).__name__}: {exc}"[:255])
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return Result(status, took(), error)
