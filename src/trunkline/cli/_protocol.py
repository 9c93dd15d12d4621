"""uvicorn's httptools protocol with the two limits it lacks: a request read timeout and a head size cap.

uvicorn arms a timer only between keep-alive requests; a client that opens a connection and then sends
its request line, headers or body a byte at a time holds a connection open indefinitely (slowloris).
httptools (llhttp) also accepts request heads of any size. Both are enforced here, per connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trunkline.errors import BadRequest, TelnyxError


class RequestHeadTooLarge(TelnyxError):
    """431: the request line and headers are larger than the server accepts."""

    status, code, title = 431, "10015", "Request header fields too large"


class RequestTimeout(TelnyxError):
    """408: the request did not arrive in time."""

    status, code, title = 408, "10015", "Request timeout"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Pass as `http=functools.partial(GuardedHttpToolsProtocol, read_timeout=…, max_head_bytes=…)`."""

    def __init__(self, *args: Any, read_timeout: float, max_head_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout
        self._max_head = max_head_bytes
        self._head_bytes = 0
        self._head_done = False
        self._too_large = False
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is the slowest client of all

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._head_done = 0, False
        if self._read_timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in; how long the app takes to answer is not the client's doing
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this for anything httptools refuses, including our oversized-head signal.
        if self._too_large:
            self._refuse(RequestHeadTooLarge(f"The request line and headers exceed {self._max_head} bytes."))
        else:
            self._refuse(BadRequest(f"The request is not valid HTTP/1.1: {msg}"))

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._max_head:
            self._too_large = True
            # Raised inside an httptools callback: uvicorn sees a parser error and calls send_400_response.
            raise ValueError("request head too large")

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self._read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if not self._head_done:
            # No application is running for this request yet, so the connection is ours to answer on.
            self._refuse(RequestTimeout(f"The request did not arrive within {self._read_timeout:g} seconds."))
        else:
            # The body is late: the application is waiting on it and sees a disconnect.
            self.transport.close()

    def _refuse(self, err: TelnyxError) -> None:
        body = orjson.dumps({"errors": [err.to_entry()]})
        head = (
            f"HTTP/1.1 {err.status} {err.title}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)
        self.transport.close()
