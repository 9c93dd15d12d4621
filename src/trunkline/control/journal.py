"""The request journal: what each account's /v2 requests carried and were answered.

An entry is made by JournalMiddleware (control/journal_middleware.py), its secrets already masked
(control/masking.py), and kept by a `Journal`: `MemoryJournal` below, in this process, or
`RedisJournal` (control/redis_journal.py), shared by every API instance when TRUNKLINE_REDIS_URL is
set; control/stores.py picks one at startup.

Both keep the same bounds: `journal_limit` entries per account (TRUNKLINE_JOURNAL_LIMIT, the oldest
dropped), bodies kept up to BODY_LIMIT bytes each (`truncated`), and BYTE_BUDGET bytes of entries
over every account (the least recently active account loses its oldest entries first). So a long run
cannot exhaust the memory of the process, or of Redis.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from trunkline.store import ids

BODY_LIMIT = 64 * 1024
BYTE_BUDGET = 64 * 1024 * 1024

# A path filter: exact equality, or a fault-rule pattern's match (routes.py builds it).
PathFilter = Callable[[str], object]


@dataclass(slots=True)
class Entry:
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
    # Given by the journal when it keeps the entry: the order requests completed in.
    id: int = 0

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


def select(
    found: Iterable[Entry], *, method: str | None, path: PathFilter | None, limit: int | None
) -> list[dict[str, Any]]:
    """The entries a journal read answers: filtered, newest first, at most `limit`, as shown."""
    chosen = [e for e in found if (method is None or e.method == method) and (path is None or path(e.path))]
    chosen.sort(key=lambda e: e.id, reverse=True)
    return [e.public() for e in chosen[:limit]]


class Journal(Protocol):
    """Where entries are kept. `record` is on every /v2 request's path and never raises."""

    async def record(self, entry: Entry) -> None: ...

    async def entries(
        self,
        user_id: str | None,
        *,
        method: str | None = None,
        path: PathFilter | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, of one account or (None) of all."""
        ...

    async def clear(self, user_id: str | None) -> int: ...


class MemoryJournal:
    """Entries per account in this process, newest last. No method awaits anything, so none interleave
    with another on the event loop."""

    def __init__(self, *, limit: int, byte_budget: int = BYTE_BUDGET) -> None:
        self.limit = limit
        self.byte_budget = byte_budget
        self._accounts: OrderedDict[str, deque[Entry]] = OrderedDict()
        self._bytes = 0
        self._ids = itertools.count(1)

    async def record(self, entry: Entry) -> None:
        entry.id = next(self._ids)
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

    async def entries(
        self,
        user_id: str | None,
        *,
        method: str | None = None,
        path: PathFilter | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        pools: Iterable[deque[Entry]] = (
            list(self._accounts.values()) if user_id is None else [self._accounts.get(user_id, deque())]
        )
        return select((e for pool in pools for e in pool), method=method, path=path, limit=limit)

    async def clear(self, user_id: str | None) -> int:
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
