"""Two API hosts on one PostgreSQL and one Redis: one account's records on both, one rate-limit budget
across both, and webhook delivery that goes on, one attempt of an event at a time, when an API host
is killed mid-delivery."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import telnyx

from tests.cluster.conftest import Cluster
from tests.cluster.hosts import Host, eventually, stop_together
from tests.cluster.nodes import ApiNode, start_api
from tests.cluster.receiver import Attempt, HookReceiver
from tests.webhooks.conftest import Env, Tenant
from trunkline.store import webhook_outbox

# Small, so that one test can spend it; every other test here makes fewer requests per key.
RATE_LIMIT = 20


@pytest.fixture(scope="module")
def api_nodes(cluster: Cluster) -> Iterator[list[ApiNode]]:
    settings = {
        "TRUNKLINE_RATE_LIMIT": f"{RATE_LIMIT}/minute",
        # The receiver host's address is private (10.x): refused unless allowed (docs/webhooks.md).
        "TRUNKLINE_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    nodes = [
        start_api(
            cluster.topology[name],
            database_url=cluster.database_url,
            redis_url=cluster.redis_url,
            env=settings,
            wait=False,
        )
        for name in ("api1", "api2")
    ]
    try:
        yield [node.wait_ready() for node in nodes]
    finally:
        stop_together(node.proc for node in nodes if node.proc is not None)


@pytest.fixture
def apis(api_nodes: list[ApiNode]) -> list[ApiNode]:
    """Both API nodes, serving: one a test killed is started again."""
    for node in api_nodes:
        if not node.alive():
            node.start()
    return api_nodes


@dataclass
class Account:
    user_id: str
    key: str


@pytest.fixture
def account(cluster: Cluster) -> Account:
    user_id = f"user-{uuid.uuid4().hex[:10]}"
    return Account(user_id, cluster.mint_key(user_id))


def test_both_api_hosts_serve_the_same_accounts_records(
    cluster: Cluster, apis: list[ApiNode], account: Account
) -> None:
    api1, api2 = apis
    assert api1.host.ip != api2.host.ip
    one, two = (node.sdk(account.key, via=cluster.ops) for node in apis)
    created = one.ip_connections.create(connection_name="pbx-cluster", transport_protocol="UDP").data
    assert created is not None and created.id is not None
    ip = one.ips.create(ip_address="203.0.113.10", connection_id=created.id).data
    assert ip is not None
    # What api1 wrote, api2 serves: the same record, its IP, the /connections view.
    assert two.ip_connections.retrieve(created.id).data == created
    assert [i.id for i in two.ips.list(filter={"connection_id": created.id})] == [ip.id]
    assert created.id in {c.id for c in two.connections.list()}
    # And the other way round, at once.
    two.ip_connections.update(created.id, connection_name="pbx-renamed")
    renamed = one.ip_connections.retrieve(created.id).data
    assert renamed is not None and renamed.connection_name == "pbx-renamed"
    # Another account sees none of it, on either host.
    other_id = f"user-{uuid.uuid4().hex[:10]}"
    other_key = cluster.mint_key(other_id)
    for node in apis:
        with pytest.raises(telnyx.NotFoundError):
            node.sdk(other_key, via=cluster.ops).ip_connections.retrieve(created.id)


def test_the_rate_limit_is_one_budget_across_both_hosts(
    cluster: Cluster, apis: list[ApiNode], account: Account
) -> None:
    clients = [node.http(account.key, via=cluster.ops) for node in apis]
    # Alternating hosts, one request at a time: the budget is spent in a known order.
    statuses = [clients[n % 2].get("/ips").status_code for n in range(RATE_LIMIT + 10)]
    assert statuses == [200] * RATE_LIMIT + [429] * 10
    for client in clients:
        refused = client.get("/ips")
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["code"] == "10011"
        assert refused.headers["x-ratelimit-limit"] == str(RATE_LIMIT)
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) > 0
    with pytest.raises(telnyx.RateLimitError):
        apis[1].sdk(account.key, via=cluster.ops).ips.list()


@dataclass
class HostEnv(Env):
    """tests/webhooks' database helper, connecting from a host: the calls are written through the
    edge's importer (tests/webhooks/conftest.py, Tenant.call) from an edge host, as an edge would."""

    host: Host

    def db(self, work: Callable[..., Any]) -> Any:
        return self.host.call(super().db, work)


CALLS = 5  # each refused: call.initiated, then call.hangup


def test_webhooks_go_on_one_attempt_at_a_time_when_an_api_host_dies_mid_delivery(
    cluster: Cluster, apis: list[ApiNode], account: Account
) -> None:
    api1, api2 = apis
    ops = cluster.ops
    # api1's attempts are held open until api1 goes away; api2's are answered at once.
    receiver = HookReceiver(
        cluster.topology["receiver"], behave=lambda a: (200, 60.0 if a.peer == api1.host.ip else 0.0)
    ).start()
    try:
        env = HostEnv(cluster.database_url, api1.api, cluster.topology["edge_a"])
        tenant = Tenant(env, account.user_id, api1.sdk(account.key, via=ops))
        # Its lease is the timeout + 10 s (docs/webhooks.md): the held events go out again after that.
        conn_id = tenant.connection(
            webhook_event_url=receiver.url(), webhook_api_version="2", webhook_timeout_secs=2
        )
        # api2 paused while the events are written, so that api1 is sure to be delivering when it dies.
        api2.host.kill(signal.SIGSTOP)
        try:
            records = [tenant.call(conn_id, refused=403) for _ in range(CALLS)]
            eventually(lambda: receiver.held_from(api1.host.ip), timeout=30, what="api1 mid-delivery")
            assert api1.host.kill(signal.SIGKILL)
        finally:
            api2.host.kill(signal.SIGCONT)
        # The other host keeps serving; the dead one answers nothing.
        assert not ops.connects(api1.host.ip, api1.port)
        served = api2.sdk(account.key, via=ops).ip_connections.retrieve(conn_id).data
        assert served is not None and served.id == conn_id
        eventually(
            lambda: [e.status for e in env.events(connection_id=conn_id)] == ["delivered"] * 2 * CALLS,
            timeout=60,
            interval=0.2,
            what="every event delivered",
        )
    finally:
        receiver.stop()

    attempts, events = receiver.snapshot(), env.events(connection_id=conn_id)
    answered = [a for a in attempts if a.status == 200]
    # Exactly once: every event answered once, by api2 (api1 never got an answer before it died).
    assert sorted(a.event_id for a in answered) == sorted(e.id for e in events)
    assert {a.peer for a in answered} == {api2.host.ip}
    # One at a time: never two attempts of one event in flight together, on any host.
    assert max(receiver.most_in_flight.values()) == 1
    # What api1 held lost its sender when api1 died, and went out again only after: the same event,
    # its next attempt; the outbox names the lost attempt.
    held = [a for a in attempts if a.peer == api1.host.ip]
    assert held and all(a.abandoned_at is not None for a in held)
    for lost in held:
        (again,) = [a for a in answered if a.event_id == lost.event_id]
        assert lost.abandoned_at is not None and again.at >= lost.abandoned_at
        assert again.json["data"] == lost.json["data"]
        assert again.json["meta"]["attempt"] == lost.json["meta"]["attempt"] + 1
        assert [(r.status_code, r.error) for r in env.attempts(lost.event_id)] == [
            (None, webhook_outbox.ABANDONED),
            (200, None),
        ]
    # Each call's events arrived in order.
    for record in records:
        assert _types_of(answered, record) == ["call.initiated", "call.hangup"]


def _types_of(attempts: list[Attempt], record_id: str) -> list[str]:
    return [
        a.json["data"]["event_type"]
        for a in attempts
        if a.json["data"]["payload"]["call_leg_id"] == record_id
    ]
