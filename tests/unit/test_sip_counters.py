"""The shared call counts (sip/counters.py) against a real Redis: take, refuse, release, renew, lapse,
and racing takes from several edges that never pass a limit."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.services import REDIS_URL, forget, redis_prefix
from trunkline.sip import counters
from trunkline.sip.counters import CallsPerCld, Counter, Over, SharedCounters


@pytest.fixture
def prefix() -> Iterator[str]:
    name = redis_prefix()
    yield name
    forget(name)


def edge(prefix: str, *, lease: float = 30.0) -> SharedCounters:
    return SharedCounters(REDIS_URL, prefix=prefix, edge=uuid.uuid4().hex[:8], lease_seconds=lease)


def up(prefix: str, counter: Counter) -> int:
    """Calls counted on one counter now, read as an operator would (ZCOUNT of unexpired members)."""
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}calls:{counter.kind}:{json.dumps(counter.id)}"
    return int(client.zcount(key, int(time.time() * 1000), "+inf"))


def test_a_call_takes_every_counter_and_gives_them_back(prefix: str) -> None:
    a = edge(prefix)
    conn, acct = Counter("outc", "c1", 2), Counter("acct", "alice", 5)
    member = a.take("call-1", [conn, acct], None)
    assert isinstance(member, str)
    assert (up(prefix, conn), up(prefix, acct)) == (1, 1)
    assert a.release(member) is True
    assert (up(prefix, conn), up(prefix, acct)) == (0, 0)
    assert a.release(member) is False  # twice is harmless


def test_the_first_counter_at_its_limit_refuses_and_nothing_is_taken(prefix: str) -> None:
    a = edge(prefix)
    conn, acct = Counter("outc", "c1", 5), Counter("acct", "alice", 1)
    assert isinstance(a.take("call-1", [conn, acct], None), str)
    assert a.take("call-2", [conn, acct], None) == Over("acct")
    # The refused call left no trace on the counter it would have passed.
    assert up(prefix, conn) == 1


def test_no_limit_still_counts_so_a_limit_set_later_sees_the_calls(prefix: str) -> None:
    a = edge(prefix)
    assert isinstance(a.take("call-1", [Counter("outc", "c1", -1)], None), str)
    assert a.take("call-2", [Counter("outc", "c1", 1)], None) == Over("outc")


def test_calls_per_cld_counts_started_calls_until_the_window_ends(prefix: str) -> None:
    a = edge(prefix)
    cld = CallsPerCld("ovp1:+15551230000:w1", 2, 1)
    first = a.take("call-1", [], cld)
    assert isinstance(first, str)
    a.release(first)  # an ended call still counts: the limit is on calls started
    assert isinstance(a.take("call-2", [], cld), str)
    assert a.take("call-3", [], cld) == Over("cld")
    time.sleep(1.3)  # the window's counter lapsed
    assert isinstance(a.take("call-4", [], cld), str)


def test_an_edge_that_stops_renewing_has_its_calls_age_out(prefix: str) -> None:
    crashed, alive = edge(prefix, lease=1.0), edge(prefix, lease=1.0)
    conn = Counter("outc", "c1", 2)
    assert isinstance(crashed.take("call-1", [conn], None), str)
    assert isinstance(alive.take("call-2", [conn], None), str)
    assert alive.take("call-3", [conn], None) == Over("outc")
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline:
        assert alive.renew() == 1
        time.sleep(0.2)
    # The crashed edge's call lapsed; the live one's was renewed and still counts.
    assert up(prefix, conn) == 1
    assert isinstance(alive.take("call-3", [conn], None), str)
    assert alive.take("call-4", [conn], None) == Over("outc")


def test_simultaneous_takes_from_several_edges_never_pass_the_limit(prefix: str) -> None:
    edges = [edge(prefix) for _ in range(4)]
    conn = Counter("outc", "c1", 3)
    start = threading.Barrier(32)
    results: list[str | Over] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        start.wait()
        got = edges[i % 4].take(f"call-{i}", [conn, Counter("acct", "alice", -1)], None)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [r for r in results if isinstance(r, str)]
    assert len(taken) == 3
    assert results.count(Over("outc")) == 29
    assert up(prefix, conn) == 3


def test_ids_with_any_character_name_one_owner(prefix: str) -> None:
    a = edge(prefix)
    assert isinstance(a.take("call-1", [Counter("acct", "a:b", 1)], None), str)
    assert isinstance(a.take("call-2", [Counter("acct", "a", 1)], None), str)


def test_an_unreachable_redis_raises_unavailable_fast_and_is_left_alone_for_a_while() -> None:
    dead = SharedCounters("redis://127.0.0.1:1/0", prefix="test:", edge="e", lease_seconds=30)
    began = time.monotonic()
    with pytest.raises(counters.Unavailable, match=r"127\.0\.0\.1:1"):
        dead.take("call-1", [Counter("outc", "c1", 1)], None)
    with pytest.raises(counters.Unavailable, match="failed less than"):
        dead.take("call-2", [Counter("outc", "c1", 1)], None)
    assert time.monotonic() - began < 1.0


def test_passwords_stay_out_of_messages() -> None:
    assert counters.redact("redis://:s3cret@db:6379/0") == "redis://***@db:6379/0"
    assert counters.redact("redis://user:s3cret@db:6379/0") == "redis://user:***@db:6379/0"
    assert counters.redact("redis://db:6379/0") == "redis://db:6379/0"
