"""The request journal: what each account's /v2 requests carried and were answered, kept in memory.

Bounded twice: `journal_limit` entries per account (TRUNKLINE_JOURNAL_LIMIT, the oldest dropped), and
BYTE_BUDGET bytes of bodies over every account (the least recently active account loses its oldest
entries first); a body past BODY_LIMIT bytes is kept truncated. So a long run cannot exhaust memory.

Secrets never enter it in clear: the values of SECRET_KEYS in JSON bodies and query strings are
replaced by "********" before an entry is stored. The hot path stays cheap: the request is recorded
as bytes with one regular-expression pass over each body; JSON is parsed only when the journal is read.
Each process keeps its own journal (`--workers N`: N journals), docs/testing-control.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trunkline.store import ids

MASK = "********"
# Keys whose values are secrets wherever they appear (SIP passwords, API keys, tokens).
SECRET_KEYS = frozenset({"password", "api_key", "key", "token", "ip_authentication_token", "secret"})
BODY_LIMIT = 64 * 1024
BYTE_BUDGET = 64 * 1024 * 1024

_names = b"|".join(re.escape(k.encode()) for k in sorted(SECRET_KEYS))
# `"password": <value>` in JSON: a string, number or boolean becomes the mask; an object or array
# (group `open`) sends the body to be parsed and walked instead.
_JSON_VALUE = re.compile(
    rb'("(?:' + _names + rb')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|(?P<open>[\[{]))',
)
_FORM = re.compile(rb"(^|&)((?:" + _names + rb")=)[^&]*")
_MASK_FORM = b"\\1\\2" + MASK.encode()
_MASKED = b'"' + MASK.encode() + b'"'


def redact(body: bytes) -> bytes:
    """`body` with the value of every secret key masked, whether it is JSON or a form.

    Most bodies name no secret key at all, which a few substring searches tell (the common case on
    the hot path); a key spelled with \\u escapes, or holding an object, is found by parsing. Keys
    match as JSON compares them, case-sensitively (RFC 8259 §8.3): Telnyx's are lowercase.
    """
    if not body:
        return body
    escaped = b"\\u" in body
    if not escaped and not any(name in body for name in _NEEDLES):
        return body
    if body.lstrip()[:1] not in (b"{", b"["):
        return _FORM.sub(_MASK_FORM, body)
    containers = False

    def mask(match: re.Match[bytes]) -> bytes:
        nonlocal containers
        if match.group("open"):
            containers = True
            return match.group(0)
        return match.group(1) + _MASKED

    masked = _JSON_VALUE.sub(mask, body)
    if containers or escaped:
        try:
            return orjson.dumps(_walk(orjson.loads(body)))
        except orjson.JSONDecodeError:
            pass  # not JSON after all: the substitution above is the best that can be done
    return masked


# Substrings one of which every secret key contains ("api_key" holds "key"), searched for first.
_NEEDLES = tuple(k.encode() for k in SECRET_KEYS if not any(o != k and o in k for o in SECRET_KEYS))


def redact_query(query: bytes) -> bytes:
    return _FORM.sub(_MASK_FORM, query) if query else query


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k.lower() in SECRET_KEYS and v is not None else _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value


@dataclass(slots=True)
class Entry:
    id: int
    user_id: str
    method: str
    path: str
    query: bytes
    request_body: bytes
    status: int
    response_body: bytes
    time: float
    duration_ms: float
    request_id: str | None
    fault_id: str | None
    truncated: bool

    @property
    def size(self) -> int:
        return len(self.request_body) + len(self.response_body) + len(self.query) + 200

    def public(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user_id": self.user_id,
            "method": self.method,
            "path": self.path,
            "query": self.query.decode("latin-1"),
            "request_body": _shown(self.request_body),
            "status": self.status,
            "response_body": _shown(self.response_body),
            "time": ids.format_timestamp(dt.datetime.fromtimestamp(self.time, dt.UTC)),
            "duration_ms": round(self.duration_ms, 3),
            "request_id": self.request_id,
            "fault_id": self.fault_id,
            "truncated": self.truncated,
        }


def _shown(body: bytes) -> Any:
    """A body as the journal shows it: its JSON value, else its text, else null when empty."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


class Journal:
    """Entries per account, newest last; every method runs without awaiting, so none interleave."""

    def __init__(self, *, limit: int, byte_budget: int = BYTE_BUDGET) -> None:
        self.limit = limit
        self.byte_budget = byte_budget
        self._accounts: OrderedDict[str, deque[Entry]] = OrderedDict()
        self._bytes = 0
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def record(self, entry: Entry) -> None:
        entries = self._accounts.get(entry.user_id)
        if entries is None:
            entries = self._accounts[entry.user_id] = deque()
        else:
            self._accounts.move_to_end(entry.user_id)
        if len(entries) >= self.limit:
            self._bytes -= entries.popleft().size
        entries.append(entry)
        self._bytes += entry.size
        while self._bytes > self.byte_budget and self._accounts:
            oldest_account, oldest = next(iter(self._accounts.items()))
            if oldest:
                self._bytes -= oldest.popleft().size
            if not oldest:
                del self._accounts[oldest_account]

    def entries(
        self,
        user_id: str | None,
        *,
        method: str | None = None,
        path: Callable[[str], bool] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, of one account or (None) of all."""
        pools: Iterable[deque[Entry]] = (
            list(self._accounts.values()) if user_id is None else [self._accounts.get(user_id, deque())]
        )
        found = [
            e
            for pool in pools
            for e in pool
            if (method is None or e.method == method) and (path is None or path(e.path))
        ]
        found.sort(key=lambda e: e.id, reverse=True)
        return [e.public() for e in found[:limit]]

    def clear(self, user_id: str | None) -> int:
        if user_id is None:
            count = sum(len(p) for p in self._accounts.values())
            self._accounts.clear()
            self._bytes = 0
            return count
        entries = self._accounts.pop(user_id, None)
        if not entries:
            return 0
        self._bytes -= sum(e.size for e in entries)
        return len(entries)


class JournalMiddleware:
    """Records every /v2 request made with an account's key: installed only when control is on.

    The account is what `get_caller` (http/deps.py) authenticated; a request that never got that far
    (a bad key, an unknown route) belongs to no account and is not recorded. Control calls
    (/_trunkline/) and /health are passed through untouched.
    """

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

        async def keep_request() -> Message:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                request_body.append(message["body"])
            return message

        async def keep_response(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and message.get("body"):
                response_body.append(message["body"])
            await send(message)

        try:
            await self.app(scope, keep_request, keep_response)
        finally:
            state = scope.get("state") or {}
            user_id = state.get("user_id")
            if user_id is not None:
                self._record(scope, state, user_id, status, request_body, response_body, started, t0)

    def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        user_id: str,
        status: int,
        request_body: list[bytes],
        response_body: list[bytes],
        started: float,
        t0: float,
    ) -> None:
        # Masked whole, then cut: a cut first could split a secret from the key that names it.
        req = redact(b"".join(request_body))
        res = redact(b"".join(response_body))
        truncated = len(req) > BODY_LIMIT or len(res) > BODY_LIMIT
        self.journal.record(
            Entry(
                id=self.journal.next_id(),
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
                truncated=truncated,
            )
        )
