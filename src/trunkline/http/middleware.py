"""Pure ASGI middleware: request ids and the access log, security headers, and the body size limit."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trunkline.errors import BadRequest, PayloadTooLarge

access_log = logging.getLogger("trunkline.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _reseed_request_ids() -> None:
    global _id_prefix, _id_counter
    # A random UUID's first 23 characters (version and variant included), then a 48-bit counter:
    # UUID-shaped and unique, without the getrandom() system call uuid4() makes per request.
    _id_prefix = str(uuid.uuid4())[:23] + "-"
    _id_counter = itertools.count(int.from_bytes(os.urandom(4)))


_id_prefix = ""
_id_counter = itertools.count()
_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)


def new_request_id() -> str:
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


class RequestContext:
    """Accepts or mints `X-Request-Id`, echoes it, and writes one JSON access-log line per request."""

    def __init__(self, app: ASGIApp, *, log: bool = True) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        logged = False

        def write_log() -> None:
            nonlocal logged
            if not self.log or logged:
                return
            logged = True
            if not access_log.isEnabledFor(logging.INFO):
                return
            peer = (scope.get("client") or [None])[0]
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "request_id": request_id,
                "key_id": state.get("key_id"),
                # The address the front door resolved (X-Forwarded-For from a trusted proxy).
                "client": state.get("client_address", peer),
            }
            # What `access_log.info` does, less its walk up the stack to find the caller.
            record = access_log.makeRecord(
                access_log.name,
                logging.INFO,
                __file__,
                0,
                "request",
                (),
                None,
                "write_log",
                {"fields": fields},
            )
            access_log.handle(record)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(state.get("response_headers", ()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Written before the last byte leaves, so whoever holds a response can find its line.
                write_log()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            write_log()  # no response was completed (the client left, or the app raised)


# For a JSON API: nothing may be sniffed, framed, cached or sent on as a referrer. The CSP forbids every
# kind of content, which a JSON document never needs (OWASP REST Security Cheat Sheet, "Security
# headers"). HSTS is left to the TLS-terminating proxy: trunkline itself speaks plain HTTP.
_API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# The docs page and its assets (http/docs_page.py): Swagger UI, served by this process with no inline
# script, may run scripts and styles from 'self' only, fetch the OpenAPI document from 'self' and show
# images from 'self' or data: URLs (its stylesheet draws its icons as data: SVGs). Nothing else loads.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_DOCS_HEADERS = [
    (name, _DOCS_CSP if name == b"content-security-policy" else value) for name, value in _API_HEADERS
]


class SecurityHeaders:
    """Adds the headers above to every response; the docs page and its assets get the docs CSP.

    A response's own header wins (the docs assets' Cache-Control, for one)."""

    def __init__(self, app: ASGIApp, *, docs_path: str) -> None:
        self.app = app
        self.docs_path = docs_path
        self.docs_assets = docs_path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        docs = path == self.docs_path or path.startswith(self.docs_assets)
        extra = _DOCS_HEADERS if docs else _API_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [
                    *message.get("headers", ()),
                    *(h for h in extra if h[0] not in names),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413, by Content-Length up front or while streaming.

    `exceptions` maps a path to a limit of its own (the control API's state document can be far
    larger than any Telnyx request body).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exceptions: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.exceptions = exceptions or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = (
            self.exceptions.get(scope["path"], self.default_max) if self.exceptions else self.default_max
        )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _too_large(send, max_bytes)
            return
        seen, complete = 0, False

        async def limited() -> Message:
            nonlocal seen, complete
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # Raised inside the app, so its Telnyx error handler answers 413.
                    raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
                complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect" and not complete:
                # The client left (or `serve` cut off a body that came too slowly) mid-body: an
                # ordinary client error, answered to no one and logged as one access line, where
                # Starlette's ClientDisconnect would reach the last-resort handler as a traceback.
                raise BadRequest("The connection closed before the whole request body arrived.")
            return message

        await self.app(scope, limited, send)


async def _too_large(send: Send, limit: int) -> None:
    err = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    body = orjson.dumps({"errors": [err.to_entry()]})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's structured fields."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # one strftime a second, not one a line
            self._second, self._stamp = second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        out: dict[str, Any] = {
            "time": self._stamp,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()
