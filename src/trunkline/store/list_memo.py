"""What a list learned about one account's rows while they stayed as they were: the exact total of a
filter, and the sort keys of every STRIDE-th row of an order. A filter is then counted once, not on
every page, and a deep page starts from the nearest known row instead of reading every row before it.

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

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

# Every STRIDE-th row of an order is remembered: a page then reads at most STRIDE + its size rows past
# the nearest one, and a million rows cost 10,000 keys.
STRIDE = 100
# What one process keeps at most, counted in remembered keys plus one per entry (about 100 bytes each).
CAPACITY = 500_000

Keys = tuple[Any, ...]


@dataclass(slots=True)
class Learned:
    """What is known of one account's list under one filter at one version."""

    key: Hashable
    version: int
    total: int | None = None
    # Per order: position p (a multiple of STRIDE) → the sort keys of the row just before it, so that
    # the rows after those keys begin at p.
    anchors: dict[Hashable, dict[int, Keys]] = field(default_factory=dict)

    def size(self) -> int:
        return 1 + sum(len(of_order) for of_order in self.anchors.values())


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
        """Remember that the rows after `keys` begin at `position` in `order`."""
        of_order = entry.anchors.setdefault(order, {})
        if position not in of_order:
            of_order[position] = keys
            if self._entries.get(entry.key) is entry:  # not one replaced or evicted meanwhile
                self._held += 1
                self._evict()

    def _evict(self) -> None:
        while self._held > self._capacity and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._held -= old.size()

    @property
    def held(self) -> int:
        return self._held
