"""Delivery you can trust: the outbox, retries and backoff, failover, timeouts, leases, the tenant wall,
slow receivers beside fast ones, the legacy format, and an API restart with the receiver down."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from tests.conftest import test_settings
from tests.server import LiveServer
from tests.services import free_port
from tests.webhooks.conftest import Env, Receiver, deliver
from trunkline.store import accounts
from trunkline.webhooks import policy

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _event(**columns: object) -> dict[str, object]:
    row: dict[str, object] = {
        "url": "http://a/hook",
        "failover_url": None,
        "next_url": "http://a/hook",
        "attempts": 0,
        "round_attempts": 0,
        "created_at": "2026-12-01T00:00:00.000Z",
    }
    return {**row, **columns}


# -- the policy, pinned -----------------------------------------------------------------------------


def test_the_backoff_doubles_from_one_second_to_five_minutes_with_equal_jitter() -> None:
    p = policy.RetryPolicy()
    assert [p.delay(n, 0.0) for n in range(1, 12)] == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150]
    assert [p.delay(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([1, 2, 4], abs=1e-5)
    assert (p.per_url, p.retry_seconds) == (3, 86_400)


def test_what_each_answer_means() -> None:
    assert [policy.classify(s) for s in (200, 204, 299)] == ["delivered"] * 3
    assert [policy.classify(s) for s in (None, 500, 503, 408, 429)] == ["retry"] * 5
    assert [policy.classify(s) for s in (301, 302, 400, 401, 404, 410)] == ["refused"] * 6
    assert (policy.timeout_of(None), policy.timeout_of(0), policy.timeout_of(7)) == (2.0, 2.0, 7.0)


def test_three_attempts_per_url_then_the_other_url_and_back() -> None:
    p = policy.RetryPolicy()
    both = {"failover_url": "http://b/hook"}
    urls, event = [], _event(**both)
    for n in range(8):
        urls.append(event["next_url"])
        changes = p.after(event, status_code=500, now=T0, rand=0.0)
        event = {**event, **changes, "attempts": n + 1}
    assert urls == ["http://a/hook"] * 3 + ["http://b/hook"] * 3 + ["http://a/hook"] * 2
    # A refusal (404) on the primary moves to the failover at once; one by the failover is final.
    assert p.after(_event(**both), status_code=404, now=T0, rand=0.0) == {
        "next_url": "http://b/hook",
        "round_attempts": 0,
        "next_attempt_at": T0,
    }
    assert p.after(_event(**both, next_url="http://b/hook"), status_code=404, now=T0, rand=0.0) == {
        "status": "failed"
    }
    assert p.after(_event(), status_code=404, now=T0, rand=0.0) == {"status": "failed"}
    # Past the retry window: failed.
    late = T0 + dt.timedelta(days=1)
    assert p.after(_event(), status_code=500, now=late, rand=0.0) == {"status": "failed"}


# -- against real receivers -------------------------------------------------------------------------


def test_retries_keep_the_event_id_and_count_attempts_with_the_backoff(env: Env, receiver: Receiver) -> None:
    receiver.behave = lambda path, n: (500 if n <= 2 else 200, 0.0)
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    tenant.call(conn_id, refused=403)  # initiated, hangup
    retry = policy.RetryPolicy(base_seconds=0.4)
    deliver(env.database_url, lambda: len(receiver.hits) >= 4, retry=retry, rand=lambda: 0.0)
    first = [h for h in receiver.hits if h.json["data"]["event_type"] == "call.initiated"]
    assert [h.json["meta"]["attempt"] for h in first] == [1, 2, 3]
    assert len({h.json["data"]["id"] for h in first}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(first)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # delay(1) = 0.2 s, delay(2) = 0.4 s with no jitter
    # One call's events in order: the hangup only after the initiated event was delivered.
    assert receiver.hits[3].json["data"]["event_type"] == "call.hangup"
    (event,) = [e for e in env.events(connection_id=conn_id) if e.event_type == "call.initiated"]
    assert (event.status, event.attempts, event.delivered_to) == ("delivered", 3, receiver.url())
    assert [a.status_code for a in env.attempts(event.id)] == [500, 500, 200]


def test_the_failover_url_gets_the_event_after_the_primary_fails(env: Env, receiver: Receiver) -> None:
    receiver.behave = lambda path, n: (503, 0.0) if path == "/primary" else (200, 0.0)
    tenant = env.tenant()
    conn_id = tenant.connection(
        webhook_event_url=receiver.url("/primary"),
        webhook_event_failover_url=receiver.url("/failover"),
        webhook_api_version="2",
    )
    tenant.call(conn_id, refused=403)
    retry = policy.RetryPolicy(base_seconds=0.05)
    deliver(env.database_url, lambda: len(receiver.on("/failover")) >= 2, retry=retry)
    by_event: dict[str, list[tuple[int, str]]] = {}
    for hit in receiver.hits:
        meta = hit.json["meta"]
        by_event.setdefault(hit.json["data"]["id"], []).append((meta["attempt"], meta["delivered_to"]))
    primary, failover = receiver.url("/primary"), receiver.url("/failover")
    for attempts in by_event.values():
        assert attempts == [(1, primary), (2, primary), (3, primary), (4, failover)]
    for event in env.events(connection_id=conn_id):
        assert (event.status, event.delivered_to, event.attempts) == ("delivered", failover, 4)


def test_the_timeout_is_the_connections_or_two_seconds(env: Env, receiver: Receiver) -> None:
    receiver.behave = lambda path, n: (200, 3.0 if n == 1 else 0.0)
    tenant = env.tenant()
    short = tenant.connection(webhook_event_url=receiver.url("/short"), webhook_timeout_secs=1)
    default = tenant.connection(webhook_event_url=receiver.url("/default"))
    tenant.call(short, refused=403)
    tenant.call(default, refused=403)
    retry = policy.RetryPolicy(base_seconds=0.05)

    def done() -> bool:
        return (
            all(e.status == "delivered" for e in env.events(user_id=tenant.user_id))
            and len(receiver.hits) >= 6
        )

    deliver(env.database_url, done, retry=retry, timeout=30)
    for conn_id, limit in ((short, 1000), (default, 2000)):
        first = env.events(connection_id=conn_id)[0]
        attempts = env.attempts(first.id)
        assert attempts[0].status_code is None and f"within {limit // 1000} s" in attempts[0].error
        assert limit <= attempts[0].latency_ms < limit + 700
        assert attempts[1].status_code == 200


def test_two_workers_never_deliver_one_event_at_the_same_time(env: Env, receiver: Receiver) -> None:
    receiver.behave = lambda path, n: (200, 0.05)
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    for _ in range(15):
        tenant.call(conn_id, refused=403)
    workers = deliver(
        env.database_url, lambda: len(receiver.hits) >= 30, workers=2, poll_seconds=0.005, per_receiver=8
    )
    time.sleep(0.3)  # nothing more arrives
    ids = [h.json["data"]["id"] for h in receiver.hits]
    assert len(ids) == len(set(ids)) == 30  # each event exactly once
    assert max(receiver.most_in_flight.values()) == 1
    owners = {a.url for e in env.events(connection_id=conn_id) for a in env.attempts(e.id)}
    assert owners == {receiver.url()} and len(workers) == 2


def test_events_of_one_account_never_reach_another_accounts_url(env: Env, receiver: Receiver) -> None:
    alice, mallory = env.tenant(), env.tenant()
    a_conn = alice.connection(webhook_event_url=receiver.url("/alice"), webhook_api_version="2")
    m_conn = mallory.connection(webhook_event_url=receiver.url("/mallory"), webhook_api_version="2")
    alice.call(a_conn, refused=403)
    # A forged log line naming Alice's connection under Mallory's account sends nothing anywhere.
    mallory.call(a_conn, refused=403)
    mallory.call(m_conn, refused=403)
    deliver(env.database_url, lambda: len(receiver.hits) >= 4)
    time.sleep(0.3)
    assert {h.json["data"]["payload"]["connection_id"] for h in receiver.on("/alice")} == {a_conn}
    assert {h.json["data"]["payload"]["connection_id"] for h in receiver.on("/mallory")} == {m_conn}
    assert len(receiver.on("/alice")) == len(receiver.on("/mallory")) == 2


def test_a_slow_receiver_does_not_hold_up_a_fast_one(env: Env, receiver: Receiver) -> None:
    receiver.behave = lambda path, n: (200, 1.5 if path == "/slow" else 0.0)
    tenant = env.tenant()
    slow = tenant.connection(webhook_event_url=receiver.url("/slow"), webhook_api_version="2")
    fast = tenant.connection(webhook_event_url=receiver.url("/fast"), webhook_api_version="2")
    for _ in range(8):
        tenant.call(slow, refused=403)
    for _ in range(4):
        tenant.call(fast, refused=403)
    started = time.monotonic()
    deliver(env.database_url, lambda: len(receiver.on("/fast")) >= 8, concurrency=4, per_receiver=2)
    fast_done = receiver.on("/fast")[-1].at
    slow_hits = [h.at for h in receiver.on("/slow")]
    # Every fast event arrived while the slow receiver's first two attempts were still in flight.
    assert fast_done - started < 1.2
    assert len([at for at in slow_hits if at <= fast_done]) == 2


def test_version_1_events_have_the_legacy_shape(env: Env, receiver: Receiver) -> None:
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), call_cost_in_webhooks=True)  # "1" default
    record_id = tenant.call(conn_id)
    deliver(env.database_url, lambda: len(receiver.hits) >= 5)
    bodies = [h.json for h in receiver.hits]
    assert [b["event_type"] for b in bodies] == [
        "call_initiated",
        "call_answered",
        "call_bridged",
        "call_hangup",
        "call_cost",
    ]
    for body in bodies:
        assert set(body) == {"record_type", "id", "event_type", "created_at", "payload"}
        assert body["payload"]["occurred_at"] == body["created_at"]
        assert body["payload"]["call_leg_id"] == record_id
    assert all("telnyx-signature-ed25519" in h.headers for h in receiver.hits)


def test_a_replayed_call_log_sends_each_event_once(env: Env, receiver: Receiver) -> None:
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    tenant.call(conn_id)
    first = env.events(connection_id=conn_id)
    assert [e.event_type for e in first] == ["call.initiated", "call.answered", "call.bridged", "call.hangup"]
    no_hook = tenant.connection()
    tenant.call(no_hook)
    assert env.events(connection_id=no_hook) == []


def test_events_wait_in_the_outbox_across_an_api_restart_until_the_receiver_is_up(env: Env) -> None:
    port = free_port()
    receiver = Receiver(port=port)
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    tenant.call(conn_id, refused=403)
    settings = test_settings(env.database_url, webhook_backoff_seconds=0.2, webhook_poll_seconds=0.05)
    api = LiveServer(settings).start()
    deadline = time.monotonic() + 10
    while not all(e.attempts >= 1 for e in env.events(connection_id=conn_id)[:1]):
        assert time.monotonic() < deadline, "the API never tried the receiver"
        time.sleep(0.05)
    api.stop()  # the receiver is still down; nothing is delivered
    assert {e.status for e in env.events(connection_id=conn_id)} == {"pending"}
    receiver.start()
    try:
        api = LiveServer(settings).start()
        deadline = time.monotonic() + 15
        while len(receiver.hits) < 2:
            assert time.monotonic() < deadline, "events were lost across the restart"
            time.sleep(0.05)
        api.stop()
        events = env.events(connection_id=conn_id)
        assert [e.status for e in events] == ["delivered", "delivered"]
        assert [h.json["data"]["id"] for h in receiver.hits] == [e.id for e in events]
        assert receiver.hits[0].json["meta"]["attempt"] >= 2  # counted on from before the restart
    finally:
        receiver.stop()


def test_a_reset_clears_the_accounts_events_and_nobody_elses(env: Env, receiver: Receiver) -> None:
    mine, theirs = env.tenant(), env.tenant()
    mine_conn = mine.connection(webhook_event_url=receiver.url("/mine"))
    theirs_conn = theirs.connection(webhook_event_url=receiver.url("/theirs"))
    mine.call(mine_conn, refused=403)
    theirs.call(theirs_conn, refused=403)
    deliver(env.database_url, lambda: len(receiver.hits) >= 4)
    mine.call(mine_conn, refused=403)  # pending, never delivered
    counts = env.db(lambda conn: accounts.wipe(conn, user_id=mine.user_id))
    assert counts["webhook_events"] == 4
    assert env.events(user_id=mine.user_id) == []
    assert len(env.events(user_id=theirs.user_id)) == 2
