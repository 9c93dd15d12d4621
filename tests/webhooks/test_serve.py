"""Delivery by real `trunkline serve` processes: killed with SIGKILL mid-delivery, the event goes out
once its lease runs out, from the next server on the database; and which receivers each kind of server
may reach by default (plain `serve`: no loopback; `serve --ephemeral` and the pytest plugin: yes)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import telnyx

from tests.services import free_port
from tests.webhooks.conftest import Env, Receiver, Tenant, eventually
from trunkline.store import webhook_outbox
from trunkline.testing import TrunklineServer


def _serve(database_url: str, log: Path, **variables: str) -> subprocess.Popen[bytes]:
    """`trunkline serve` in a session of its own (so a signal reaches it alone), ready to answer."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    environ |= {
        "TRUNKLINE_DATABASE_URL": database_url,
        "TRUNKLINE_ACCESS_LOG": "false",
        "TRUNKLINE_WEBHOOK_POLL_SECONDS": "0.05",
        **variables,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trunkline", "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=environ,
            start_new_session=True,
        )

    def ready() -> bool:
        assert proc.poll() is None, f"trunkline serve exited: {log.read_text()[-2000:]}"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(ready, timeout=30, what="trunkline serve ready")
    return proc


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)  # its own session: this process and nothing else
    proc.wait(timeout=20)


def _monotonic_of(stamp: str) -> float:
    """A stored timestamp (real time) on this process's monotonic clock."""
    at = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return time.monotonic() + (at - dt.datetime.now(dt.UTC)).total_seconds()


def test_an_api_killed_mid_delivery_sends_the_event_again_once_its_lease_runs_out(
    env: Env, tmp_path: Path
) -> None:
    # The first request of the event is held open (60 s) until its client goes away; the rest are
    # answered at once.
    receiver = Receiver(behave=lambda path, n: (200, 60.0 if n == 1 else 0.0)).start()
    try:
        tenant = env.tenant()
        conn_id = tenant.connection(
            webhook_event_url=receiver.url(), webhook_api_version="2", webhook_timeout_secs=3
        )
        tenant.call(conn_id, refused=403)  # call.initiated, then call.hangup
        allow = {"TRUNKLINE_WEBHOOK_ALLOW_PRIVATE": "true"}
        first = _serve(env.database_url, tmp_path / "first.log", **allow)
        try:
            eventually(lambda: receiver.hits, timeout=20, what="the first attempt")
            os.killpg(first.pid, signal.SIGKILL)  # mid-attempt: the receiver has not answered
            first.wait(timeout=10)
        finally:
            _stop(first, signal.SIGKILL)
        (held,) = receiver.hits
        event_id = held.json["data"]["id"]
        (event,) = [e for e in env.events(connection_id=conn_id) if e.id == event_id]
        # Nothing came back from the attempt: the event is pending, counted, leased by the dead worker.
        assert (event.event_type, event.status, event.attempts) == ("call.initiated", "pending", 1)
        assert event.lease_owner is not None and env.attempts(event_id) == []
        lease_ends = _monotonic_of(event.lease_until)

        second = _serve(env.database_url, tmp_path / "second.log", **allow)
        try:
            eventually(lambda: len(receiver.hits) >= 3, timeout=40, what="delivery after the restart")
            time.sleep(0.3)  # nothing more arrives
        finally:
            _stop(second)
    finally:
        receiver.stop()

    assert [(h.json["data"]["event_type"], h.json["meta"]["attempt"]) for h in receiver.hits] == [
        ("call.initiated", 1),
        ("call.initiated", 2),  # the same event, its attempts counting on
        ("call.hangup", 1),
    ]
    again = receiver.hits[1]
    assert again.json["data"]["id"] == event_id
    assert again.json["data"] == held.json["data"]  # the same event: only its meta differs
    # Not before the dead worker's lease ran out (timestamps have milliseconds), and never two at
    # once: the held request had lost its client before the event was sent again.
    assert again.at >= lease_ends - 0.01
    assert receiver.abandoned and receiver.abandoned[0] <= again.at
    assert max(receiver.most_in_flight.values()) == 1
    events = env.events(connection_id=conn_id)
    assert [(e.status, e.attempts) for e in events] == [("delivered", 2), ("delivered", 1)]
    assert [(a.attempt, a.status_code, a.error) for a in env.attempts(event_id)] == [
        (1, None, webhook_outbox.ABANDONED),
        (2, 200, None),
    ]


def test_trunkline_serve_refuses_a_loopback_receiver_by_default(
    env: Env, receiver: Receiver, tmp_path: Path
) -> None:
    tenant = env.tenant()
    conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
    tenant.call(conn_id, refused=403)
    server = _serve(env.database_url, tmp_path / "serve.log")
    try:
        eventually(
            lambda: all(e.status == "failed" for e in env.events(connection_id=conn_id)),
            timeout=20,
            what="the events refused",
        )
    finally:
        _stop(server)
    refusal = "refused: 127.0.0.1 is a loopback address; set TRUNKLINE_WEBHOOK_ALLOW_PRIVATE=true to allow"
    for event in env.events(connection_id=conn_id):
        assert [(a.status_code, a.error) for a in env.attempts(event.id)] == [(None, refusal)]
    assert receiver.hits == []


def test_serve_ephemeral_delivers_to_a_loopback_receiver(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUNKLINE_WEBHOOK_ALLOW_PRIVATE", raising=False)
    # TMPDIR puts the throw-away database where this test can write the edge's call log into it.
    variables = {"TMPDIR": str(tmp_path), "TRUNKLINE_WEBHOOK_POLL_SECONDS": "0.05"}
    with TrunklineServer(env=variables) as server:
        (database,) = tmp_path.glob("trunkline-ephemeral-*/trunkline.db")
        account = server.account
        assert account is not None
        env = Env(f"sqlite:///{database}", account.base_url)
        client = telnyx.Telnyx(api_key=account.key, base_url=account.base_url, max_retries=0)
        tenant = Tenant(env, account.user_id, client)
        conn_id = tenant.connection(webhook_event_url=receiver.url(), webhook_api_version="2")
        tenant.call(conn_id, refused=403)
        eventually(lambda: len(receiver.hits) >= 2, timeout=20, what="delivery from --ephemeral")
    assert [h.json["data"]["event_type"] for h in receiver.hits] == ["call.initiated", "call.hangup"]
