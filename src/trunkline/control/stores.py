"""Where the control API keeps its journal and fault rules, chosen once at startup.

Without TRUNKLINE_REDIS_URL, in this process's memory (each process, each `--workers` worker, its
own); with it, in Redis, so every API instance behind a load balancer reads and writes the same
ones. The rest of the control API sees only the `Journal` and `Faults` interfaces
(control/journal.py, control/faults.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trunkline.config import Settings
from trunkline.control.faults import Faults
from trunkline.control.journal import Journal, MemoryJournal
from trunkline.control.memory_faults import MemoryFaults
from trunkline.control.redis_faults import RedisFaults
from trunkline.control.redis_journal import RedisJournal
from trunkline.control.redis_link import RedisLink


@dataclass(frozen=True, slots=True)
class Stores:
    journal: Journal
    faults: Faults
    close: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


def in_memory(settings: Settings) -> Stores:
    return Stores(MemoryJournal(limit=settings.journal_limit), MemoryFaults(), _nothing)


def in_redis(settings: Settings) -> Stores:
    assert settings.redis_url
    link = RedisLink(settings.redis_url)
    return Stores(RedisJournal(link, limit=settings.journal_limit), RedisFaults(link), link.close)


def create(settings: Settings) -> Stores:
    return (in_redis if settings.redis_url else in_memory)(settings)
