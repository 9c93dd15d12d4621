"""One budget across API instances: two `trunkline serve` processes sharing Redis (CI has it on loopback).

The numbers asked for in the issue are printed and recorded as test properties: how many requests the
two instances admitted together against the configured limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests import conftest
from tests.frontdoor._clients import ServeProcess, serve
from tests.server import LiveServer
from tests.services import REDIS_URL, missing, port_open


@pytest.fixture(scope="module")
def redis_url() -> str:
    parsed = urlparse(REDIS_URL)
    if not port_open(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        missing(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def two_instances(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    env = {"redis_url": redis_url, "rate_limit": "40/minute"}
    with serve(database_url, tmp_path, **env) as a, serve(database_url, tmp_path, **env) as b:
        yield [a, b]


def hammer(apis: list[str], key: str, *, per_instance: int, threads_per_instance: int = 4) -> list[int]:
    """Fire requests at every instance at once from several threads; the statuses, in no order."""
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(api: str, count: int) -> None:
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            for _ in range(count):
                code = c.get("/ips").status_code
                with lock:
                    statuses.append(code)

    workers = [
        threading.Thread(target=worker, args=(api, per_instance // threads_per_instance))
        for api in apis
        for _ in range(threads_per_instance)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statuses


def test_two_instances_share_one_budget_through_redis(
    two_instances: list[ServeProcess], database_url: str, record_property
) -> None:  # type: ignore[no-untyped-def]
    key = conftest.mint_key(database_url, "shared-budget")
    statuses = hammer([p.api for p in two_instances], key, per_instance=60)
    admitted = statuses.count(200)
    refused = statuses.count(429)
    record_property("shared_limit_admitted", admitted)
    print(f"\ntwo instances, one Redis, limit 40/minute: admitted {admitted} of {len(statuses)}")
    assert admitted + refused == len(statuses) == 120
    assert admitted == 40  # exactly the configured budget: limits' moving window is atomic in Redis
    # Both instances report the one budget: the next answer from either shows it spent.
    for p in two_instances:
        r = httpx.get(f"{p.api}/ips", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"


def test_two_instances_hold_a_per_second_rate_together(
    database_url: str, redis_url: str, tmp_path: Path, record_property
) -> None:  # type: ignore[no-untyped-def]
    limit, seconds = 50, 3.0
    env = {"redis_url": redis_url, "rate_limit": f"{limit}/second"}
    with serve(database_url, tmp_path, **env) as a, serve(database_url, tmp_path, **env) as b:
        key = conftest.mint_key(database_url, "shared-rate")
        admitted_at: list[float] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def worker(api: str) -> None:
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
                while time.monotonic() < stop:
                    if c.get("/ips").status_code == 200:
                        with lock:
                            admitted_at.append(time.monotonic())

        threads = [threading.Thread(target=worker, args=(p.api,)) for p in (a, b) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    admitted_at.sort()
    # The busiest one-second span seen by the clients (admission times are stamped on return, so a
    # span can hold a few more than the server's window did).
    busiest = max(sum(1 for t in admitted_at if s <= t < s + 1.0) for s in admitted_at)
    rate = len(admitted_at) / seconds
    record_property("shared_rate_admitted_per_s", round(rate, 1))
    record_property("shared_rate_busiest_second", busiest)
    print(
        f"\ntwo instances, one Redis, limit {limit}/second for {seconds:.0f} s: admitted {len(admitted_at)}"
        f" ({rate:.1f}/s, {rate / limit:.0%} of the limit); busiest 1-s span {busiest}"
    )
    assert len(admitted_at) <= limit * (seconds + 1)
    assert rate >= limit * 0.8 * seconds / (seconds + 1)  # the budget is used, not wasted
    assert busiest <= limit * 1.2


def test_without_redis_each_instance_keeps_its_own_budget(database_url: str, record_property) -> None:  # type: ignore[no-untyped-def]
    """The contrast that makes Redis necessary: two in-process counters admit twice the limit."""
    settings = conftest.test_settings(database_url, rate_limit="40/minute")
    a, b = LiveServer(settings).start(), LiveServer(settings).start()
    try:
        key = conftest.mint_key(database_url, "separate-budgets")
        admitted = hammer([a.api, b.api], key, per_instance=60).count(200)
    finally:
        a.stop()
        b.stop()
    record_property("separate_limits_admitted", admitted)
    print(f"\ntwo instances without Redis, limit 40/minute: admitted {admitted}")
    assert admitted == 80
