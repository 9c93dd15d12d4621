"""What a list learned about one account's rows while they stayed as they were: the exact total of a
filter, and the sort keys of the rows at the pages' edges it served. A filter is then counted once, not
on every page, and a page at or near one served before starts from a known row instead of reading every
row before it.

It stays exact by one rule. `list_version` (migration 0013) counts every write to a table per account,
bumped by triggers inside the writing transaction, so the version moves when the write commits. A
reader reads the version *before* it computes anything, and files what it computed under that version.
A reader that starts after a write has committed reads a newer version, so it never uses anything
learned before that write; while nothing is written, every reader gets the same answers a count and an
OFFSET would give.

One memo per database per process (store/db.py), bounded by what it holds (least recently used first
out): every process and instance learns for itself, and nothing is shared that could go stale.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from typing import Any

# What one process keeps at most, counted in remembered rows plus one per entry (about 100 bytes each).
CAPACITY = 500_000

Keys = tuple[Any, ...]


@dataclass(slots=True)
class Anchors:
    """Rows of one order whose position is known: position → the row's sort keys."""

    positions: list[int] = field(default_factory=list)  # sorted
    keys: dict[int, Keys] = field(default_factory=dict)

    def at_or_before(self, position: int) -> tuple[int, Keys | None]:
        """The nearest known row at or before `position`, or (0, None): start from the first row."""
        i = bisect.bisect_right(self.positions, position)
        if i == 0:
            return 0, None
        known = self.positions[i - 1]
        return known, self.keys[known]

    def add(self, position: int, keys: Keys) -> bool:
        if position in self.keys:
            return False
        bisect.insort(self.positions, position)
        self.keys[position] = keys
        return True


@dataclass(slots=True)
class Learned:
    """What is known of one account's list under one filter at one version."""

    key: Hashable
    version: int
    total: int | None = None
    held: int | None = None  # the rows of the unfiltered scope, where a plan needs them
    anchors: dict[Hashable, Anchors] = field(default_factory=dict)  # per order
    # Held while the total is counted: the requests that arrive meanwhile wait for that count instead
    # of each counting again (on PostgreSQL, side by side, on every core).
    counting: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The same for a page read from afar, per (order, position): held while the first request reads it.
    _reading: dict[Hashable, asyncio.Lock] = field(default_factory=dict)

    def size(self) -> int:
        return 1 + sum(len(of_order.positions) for of_order in self.anchors.values())

    @contextlib.asynccontextmanager
    async def first_read(self, order: Hashable, position: int) -> AsyncIterator[None]:
        """Held while one request reads the page at `position` of `order`; the others wait for it."""
        key = (order, position)
        lock = self._reading.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            # Whoever comes later finds the rows this read learned, and needs no lock.
            if self._reading.get(key) is lock and not lock.locked():
                del self._reading[key]


class ListMemo:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._entries: OrderedDict[Hashable, Learned] = OrderedDict()
        self._capacity = capacity
        self._held = 0

    def learned(self, key: Hashable, version: int) -> Learned:
        """What is known of `key` at `version`; a fresh entry, replacing the old one, when it moved."""
        entry = self._entries.get(key)
        if entry is not None and entry.version == version:
            self._entries.move_to_end(key)
            return entry
        if entry is not None:
            self._held -= entry.size()
        entry = self._entries[key] = Learned(key, version)
        self._entries.move_to_end(key)
        self._held += 1
        self._evict()
        return entry

    def anchor(self, entry: Learned, order: Hashable, position: int, keys: Keys) -> None:
        """Remember that the row at `position` in `order` has the sort keys `keys`."""
        added = entry.anchors.setdefault(order, Anchors()).add(position, keys)
        if added and self._entries.get(entry.key) is entry:  # not one replaced or evicted meanwhile
            self._held += 1
            self._evict()

    def _evict(self) -> None:
        while self._held > self._capacity and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._held -= old.size()

    @property
    def held(self) -> int:
        return self._held
