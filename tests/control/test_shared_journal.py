"""The request journal in Redis: one journal for every API instance (docs/testing-control.md).

Two `trunkline serve` processes share a database and a Redis database of this module's own; the
stores are also driven directly, two links standing for two instances, for the bounds. The outage
test runs a Redis of its own and stops it under running instances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.control.shared import Instances, empty, raw_values, redis_database, two_instances
from tests.services import OwnRedis
from trunkline.control.journal import Entry
from trunkline.control.redis_journal import RedisJournal, decode, encode
from trunkline.control.redis_link import RedisLink
from trunkline.errors import ServiceUnavailable


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture(scope="module")
def both(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    with two_instances(database_url, redis_url, tmp_path_factory.mktemp("serve")) as instances:
        yield instances


@pytest.fixture
def pair(both: Instances, redis_url: str) -> Iterator[Instances]:
    empty(redis_url)  # each test starts from an empty journal
    yield both
    both.close_tenants()


def journal(control: httpx.Client, **params: object) -> list[dict[str, object]]:
    r = control.get("/requests", params=params)
    assert r.status_code == 200, r.text
    data: list[dict[str, object]] = r.json()["data"]
    return data


def test_requests_through_either_instance_are_in_one_journal_in_completion_order(pair: Instances) -> None:
    t = pair.tenant()
    for n in range(6):
        assert t.v2[n % 2].get("/ips", params={"n": n}).status_code == 200
    seen = [journal(c) for c in t.control]
    assert seen[0] == seen[1]  # both instances read the same journal
    assert [e["query"] for e in seen[0]] == [f"n={n}" for n in reversed(range(6))]  # newest first
    ids = [int(str(e["id"])) for e in seen[0]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    assert {e["user_id"] for e in seen[0]} == {t.user_id}
    # Filters work on the shared journal as on the in-process one.
    assert len(journal(t.control[1], path="/v2/ips", limit=2)) == 2
    assert journal(t.control[0], method="POST") == []


def test_secrets_are_masked_before_they_reach_redis(pair: Instances, redis_url: str) -> None:
    t = pair.tenant()
    password = "never-in-redis-" + t.user_id[-8:]
    body = {"connection_name": "office", "user_name": f"shared{t.user_id[-10:]}", "password": password}
    assert t.v2[1].post("/credential_connections", json=body).status_code == 201
    t.v2[1].get("/ips", params={"token": "query-secret-" + t.user_id[-8:]})
    stored = raw_values(redis_url)
    assert b"office" in stored  # the entry is there ...
    assert password.encode() not in stored and b"query-secret-" not in stored  # ... its secrets are not
    entry = journal(t.control[0], method="POST")[0]
    assert entry["request_body"]["password"] == "********"  # type: ignore[index]
    assert entry["response_body"]["data"]["password"] == "********"  # type: ignore[index]


def test_clearing_through_one_instance_clears_for_both(pair: Instances) -> None:
    a, b = pair.tenant(), pair.tenant()
    for n in range(4):
        a.v2[n % 2].get("/ips")
        b.v2[n % 2].get("/fqdns")
    assert a.control[0].delete("/requests").json()["data"] == {"deleted": 4}
    assert journal(a.control[1]) == [] and journal(a.control[0]) == []
    assert len(journal(b.control[1])) == 4  # the other account's journal stays
    # The admin token clears every account's, through the other instance.
    a.v2[0].get("/ips")
    assert pair.admin[1].delete("/requests").json()["data"] == {"deleted": 5}
    assert journal(b.control[0]) == [] and journal(a.control[0]) == []
    # A reset through one instance clears the account's journal for both.
    b.v2[1].get("/ips")
    assert b.control[0].post("/reset").json()["data"]["deleted"]["requests"] == 1
    assert journal(b.control[1]) == []


def test_journals_stay_walled_off_between_accounts(pair: Instances) -> None:
    a, b = pair.tenant(), pair.tenant()
    a.v2[0].get("/ips")
    a.v2[1].get("/ips")
    assert journal(b.control[0]) == [] and journal(b.control[1]) == []
    assert b.control[1].delete("/requests").json()["data"] == {"deleted": 0}
    assert len(journal(a.control[0])) == 2
    everyone = pair.admin[1].get("/requests").json()["data"]
    assert [e["user_id"] for e in everyone] == [a.user_id, a.user_id]


# --- the store itself: two links stand for two instances --------------------------------------------


def entry(user_id: str, n: int, body: bytes = b"") -> Entry:
    return Entry(
        user_id=user_id,
        method="GET",
        path="/v2/ips",
        query=f"n={n}".encode(),
        request_body=body,
        status=200,
        response_body=b'{"data":[]}',
        time=1_700_000_000.25,  # fixed, so every entry of one account has one size
        duration_ms=1.5,
        request_id=f"req-{n}",
        fault_id=None,
        truncated=False,
    )


def test_an_entry_survives_the_round_trip_byte_for_byte() -> None:
    original = entry("acct", 1, body=b"\x00\xff\nline\n{not json")
    original.query = b"a=1&b=%0A"
    original.fault_id = "fault_9"
    stored = b"42\n" + encode(original)  # as the record script stores it
    back = decode(stored)
    original.id = 42
    assert back == original


def test_journal_limit_and_the_byte_budget_hold_across_instances(redis_url: str) -> None:
    empty(redis_url)
    # What an entry takes in Redis: its encoding after "<id>" and a line break (ids stay below 100).
    small = len(encode(entry("limited", 0))) + 3
    quiet = entry("quiet", 0, body=b"x" * 2_000)
    budget = 5 * small + len(encode(quiet)) + 3 + small * 5 // 2

    async def go() -> None:
        links = [RedisLink(redis_url), RedisLink(redis_url)]
        journals = [RedisJournal(link, limit=5, byte_budget=budget) for link in links]
        try:
            for n in range(8):
                await journals[n % 2].record(entry("limited", n))
            kept = await journals[0].entries("limited")
            assert [e["query"] for e in kept] == [f"n={n}" for n in (7, 6, 5, 4, 3)]
            await journals[1].record(quiet)
            await journals[0].record(entry("limited", 8))  # now "quiet" is the least recently active
            for n in range(3):
                await journals[n % 2].record(entry("busy", n))
            # Past the budget, the least recently active account lost its entries, not the oldest one.
            assert await journals[0].entries("quiet") == []
            assert [e["query"] for e in await journals[1].entries("limited")] == [
                f"n={n}" for n in (8, 7, 6, 5, 4)
            ]
            assert len(await journals[1].entries("busy")) == 3
            assert await journals[1].clear(None) == 8
            assert await journals[0].entries(None) == []
        finally:
            for link in links:
                await link.close()

    asyncio.run(go())


def test_an_unreachable_redis_loses_entries_without_raising() -> None:
    from tests.services import free_port

    async def go() -> None:
        link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        journal = RedisJournal(link, limit=10)
        try:
            started = time.perf_counter()
            await journal.record(entry("acct", 1))
            await journal.record(entry("acct", 2))  # not even tried: the link is resting
            assert journal.lost == 2 and time.perf_counter() - started < 1.0
            with pytest.raises(ServiceUnavailable):
                await journal.entries("acct")
        finally:
            await link.close()

    asyncio.run(go())


# --- Redis stopping under running instances -----------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    import shutil

    from tests.services import missing

    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (the outage test runs one of its own)")
    server = OwnRedis().start()
    yield server
    server.stop()


def test_redis_stopping_mid_run_fails_no_v2_request(
    database_url: str, own_redis: OwnRedis, tmp_path: Path
) -> None:
    with two_instances(database_url, own_redis.url, tmp_path) as pair:
        t = pair.tenant()
        assert t.v2[0].post("/ip_connections", json={"connection_name": "kept"}).status_code == 201
        assert t.control[0].post("/faults", json={"path": "/v2/fqdns", "status": 500}).status_code == 201
        assert t.v2[1].get("/fqdns").status_code == 500
        assert len(journal(t.control[1])) == 2
        own_redis.stop()
        statuses, slowest = [], 0.0
        for n in range(20):
            started = time.perf_counter()
            statuses.append(t.v2[n % 2].get("/ips" if n < 10 else "/fqdns").status_code)
            slowest = max(slowest, time.perf_counter() - started)
        assert statuses == [200] * 20  # served, and without the rules Redis holds
        assert slowest < 2.0  # at most one short timeout, then each instance leaves Redis alone
        # Reading the journal cannot be answered: 503 in Telnyx's envelope, never a silent "empty".
        r = t.control[0].get("/requests")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "10007"
        # Nor a reset, which then deletes nothing.
        assert t.control[1].post("/reset").status_code == 503
        assert len(t.v2[0].get("/ip_connections").json()["data"]) == 1
        assert "control API's Redis unreachable" in pair.logs()
        assert "entries lost so far" in pair.logs()
        # Redis back (empty: it kept nothing on disk): within the instances' rest, entries arrive again.
        own_redis.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            t.v2[0].get("/ips", params={"via": 0})
            t.v2[1].get("/ips", params={"via": 1})
            r = t.control[1].get("/requests")
            if r.status_code == 200 and {"via=0", "via=1"} <= {e["query"] for e in r.json()["data"]}:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the journal did not recover after Redis came back")
