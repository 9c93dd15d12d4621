"""Fault rules in Redis: the same rules on every API instance, their uses counted once for all
(docs/testing-control.md). Two `trunkline serve` processes share a database and a Redis database of
this module's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.control.shared import Instances, Tenant, empty, redis_database, two_instances


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
    empty(redis_url)  # each test starts without rules
    yield both
    both.close_tenants()


def fault(control: httpx.Client, **rule: object) -> dict[str, object]:
    r = control.post("/faults", json=rule)
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()["data"]
    return data


def rules(control: httpx.Client) -> list[dict[str, object]]:
    r = control.get("/faults")
    assert r.status_code == 200, r.text
    data: list[dict[str, object]] = r.json()["data"]
    return data


def test_a_rule_added_through_one_instance_fires_on_the_other(pair: Instances) -> None:
    t = pair.tenant()
    rule = fault(t.control[0], path="/v2/ips", status=503, times=2)
    r = t.v2[1].get("/ips")
    assert r.status_code == 503 and r.headers["x-trunkline-fault"] == rule["id"]
    [listed] = rules(t.control[0])
    assert listed["id"] == rule["id"] and listed["remaining"] == 1  # one use taken, on the other
    assert t.control[1].delete(f"/faults/{rule['id']}").json()["data"]["remaining"] == 1
    assert t.v2[0].get("/ips").status_code == 200 and t.v2[1].get("/ips").status_code == 200
    assert rules(t.control[0]) == rules(t.control[1]) == []


def test_times_3_fires_exactly_3_times_for_40_requests_racing_over_both_instances(pair: Instances) -> None:
    t = pair.tenant()
    clients = [
        httpx.Client(base_url=str(t.v2[n % 2].base_url), headers={"Authorization": f"Bearer {t.key}"})
        for n in range(40)
    ]
    try:
        for c in clients:  # connections open, so the 40 requests below leave together
            assert c.get("/ips").status_code == 200
        rule = fault(t.control[1], path="/v2/outbound_voice_profiles", status=503, times=3)
        start = threading.Barrier(len(clients))

        def get(c: httpx.Client) -> int:
            start.wait()
            return c.get("/outbound_voice_profiles").status_code

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(get, clients))
    finally:
        for c in clients:
            c.close()
    assert sorted(statuses) == [200] * 37 + [503] * 3
    assert rules(t.control[0]) == rules(t.control[1]) == []
    # The journal, shared too, holds the three faulted requests whichever instance served them.
    faulted = t.control[0].get("/requests", params={"path": "/v2/outbound_voice_profiles"}).json()["data"]
    assert len(faulted) == 40 and [e["fault_id"] for e in faulted].count(rule["id"]) == 3


def test_probability_rules_fire_some_of_the_time_on_each_instance(pair: Instances) -> None:
    t = pair.tenant()
    fault(t.control[0], path="/v2/ips", status=500, probability=0.5)
    for client in t.v2:
        statuses = [client.get("/ips").status_code for _ in range(40)]
        assert 0 < statuses.count(500) < 40  # fails by chance once in 2**39 runs


def test_a_second_account_neither_sees_nor_trips_the_first_accounts_rules(pair: Instances) -> None:
    a, b = pair.tenant(), pair.tenant()
    rule = fault(a.control[0], path="/v2/**", status=500)
    for n in range(2):
        assert b.v2[n].get("/ips").status_code == 200
        assert a.v2[n].get("/ips").status_code == 500
        assert rules(b.control[n]) == []
        assert b.control[n].delete(f"/faults/{rule['id']}").status_code == 404
        assert b.control[n].delete("/faults").json()["data"] == {"deleted": 0}
    assert [r["id"] for r in rules(a.control[1])] == [rule["id"]]
    # The admin token sees every account's rules and removes one by id, through the other instance.
    assert [r["user_id"] for r in pair.admin[1].get("/faults").json()["data"]] == [a.user_id]
    assert pair.admin[1].delete(f"/faults/{rule['id']}").json()["data"]["user_id"] == a.user_id
    assert a.v2[0].get("/ips").status_code == 200


def test_clearing_through_one_instance_clears_for_both(pair: Instances) -> None:
    a, b = pair.tenant(), pair.tenant()
    for t in (a, b):
        fault(t.control[0], path="/v2/ips", status=500)
        fault(t.control[1], path="/v2/fqdns", status=500, times=5)
    assert [r["path"] for r in rules(a.control[1])] == ["/v2/ips", "/v2/fqdns"]  # creation order
    assert a.control[1].delete("/faults").json()["data"] == {"deleted": 2}
    assert a.v2[0].get("/ips").status_code == 200 and rules(a.control[0]) == []
    assert b.v2[0].get("/ips").status_code == 500  # the other account's stay
    assert pair.admin[0].delete("/faults").json()["data"] == {"deleted": 2}
    assert b.v2[1].get("/ips").status_code == 200 and rules(b.control[1]) == []
    # A reset through one instance removes the account's rules for both.
    fault(b.control[0], path="/v2/ips", status=500)
    assert b.control[1].post("/reset").json()["data"]["deleted"]["faults"] == 1
    assert b.v2[0].get("/ips").status_code == 200


def test_at_most_100_rules_per_account_when_both_instances_add_at_once(pair: Instances) -> None:
    t: Tenant = pair.tenant()

    def add(n: int) -> int:
        return t.control[n % 2].post("/faults", json={"path": "/v2/fqdns", "status": 500}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(add, range(110)))
    assert statuses.count(201) == 100 and statuses.count(422) == 10
    assert len(rules(t.control[0])) == 100
