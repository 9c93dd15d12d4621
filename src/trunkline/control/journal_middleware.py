"""JournalMiddleware: one journal entry per /v2 request made with an account's key.

Installed only when the control API is on (control/__init__.py). The account is what `get_caller`
(http/deps.py) authenticated; a request that never got that far (a bad key, an unknown route)
belongs to no account and is not recorded. Control calls (/_trunkline/) and /health pass untouched.

The entry is kept before the last body message of the response is passed on, so once a client has
its whole answer the request is in the journal, and a read that follows, through this instance or
another sharing Redis, finds it. The journal's `record` never raises (a Redis outage costs the entry,
not the request).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trunkline.control.journal import BODY_LIMIT, Entry, Journal
from trunkline.control.masking import redact, redact_query


class JournalMiddleware:
    def __init__(self, app: ASGIApp, *, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/"):
            await self.app(scope, receive, send)
            return
        started, t0 = time.time(), time.perf_counter()
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        status = 500
        recorded = False

        async def keep_request() -> Message:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                request_body.append(message["body"])
            return message

        async def record() -> None:
            nonlocal recorded
            recorded = True
            state = scope.get("state") or {}
            user_id = state.get("user_id")
            if user_id is not None:
                await self.journal.record(
                    _entry(scope, state, user_id, status, request_body, response_body, started, t0)
                )

        async def keep_response(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    response_body.append(message["body"])
                if not message.get("more_body", False):
                    await record()
            await send(message)

        try:
            await self.app(scope, keep_request, keep_response)
        finally:
            if not recorded:  # the app raised before its answer ended: record what it got
                await record()


def _entry(
    scope: Scope,
    state: dict[str, Any],
    user_id: str,
    status: int,
    request_body: list[bytes],
    response_body: list[bytes],
    started: float,
    t0: float,
) -> Entry:
    # Masked whole, then cut: a cut first could split a secret from the key that names it.
    req = redact(b"".join(request_body))
    res = redact(b"".join(response_body))
    return Entry(
        user_id=user_id,
        method=scope["method"],
        path=scope["path"],
        query=redact_query(scope.get("query_string", b"")),
        request_body=req[:BODY_LIMIT],
        status=status,
        response_body=res[:BODY_LIMIT],
        time=started,
        duration_ms=(time.perf_counter() - t0) * 1000,
        request_id=state.get("request_id"),
        fault_id=state.get("fault_id"),
        truncated=len(req) > BODY_LIMIT or len(res) > BODY_LIMIT,
    )
