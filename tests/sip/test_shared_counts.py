"""Call counts shared in Redis (sip/counters.py) at a real edge: calls_per_cld raced, a Kamailio
killed mid-call whose call ages out of the counts, and what calls get while Redis is down under each
TRUNKLINE_SIP_COUNTERS_UNAVAILABLE policy. The channel limits themselves (D1-D4, raced, and given back
on BYE, CANCEL and failure) run with shared counts in test_calls.py.

The edge counts in a Redis of this module's own (redis-server on a free port), so that a test can stop
and restart it. Callers send from 127.0.10.x, on a database of the module's own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from tests.services import OwnRedis
from tests.sip.conftest import Edge, eventually, running_edge
from tests.sip.test_calls import dial, ready, start_burst, upstream_invites
from tests.sip.test_edge import ip_connection, service_name
from tests.sip.test_policy import caller, status

pytestmark = pytest.mark.sip

TL2 = "SIP/2.0 403 Calls per CLD limit reached for the calling window TL2"
D3 = "SIP/2.0 403 Connection channel limit exceeded D3"


@pytest.fixture(scope="module")
def counts_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    server = OwnRedis().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sip_edge(
    backend: str, tmp_path_factory: pytest.TempPathFactory, counts_redis: OwnRedis
) -> Iterator[Edge]:
    with (
        migrated_database(backend, tmp_path_factory) as url,
        running_edge(url, backend, shared_counts=True, redis_url=counts_redis.url) as edge,
    ):
        yield edge


def log_since(edge: Edge, offset: int) -> str:
    return edge.service.supervisor.log_path.read_bytes()[offset:].decode(errors="replace")


def log_size(edge: Edge) -> int:
    return edge.service.supervisor.log_path.stat().st_size


def final_statuses(messages: Path) -> dict[str, str]:
    """Each call's final status line, by Call-ID, from a SIPp message trace (a final status that a
    retransmitted INVITE drew again counts once)."""
    finals: dict[str, str] = {}
    for block in messages.read_text(errors="replace").split("-" * 47 + " "):
        lines = [line.strip() for line in block.splitlines()]
        status = next((line for line in lines if line.startswith("SIP/2.0 ")), "")
        call_id = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Call-ID:")), "")
        if status and not status.startswith("SIP/2.0 1"):
            finals.setdefault(call_id, status)
    return finals


def test_simultaneous_calls_to_one_number_take_the_last_cld_call_once(sip_edge: Edge) -> None:
    caller(sip_edge, "127.0.10.1", {"calling_window": {"calls_per_cld": 1}})
    number = service_name()
    burst, messages = start_burst(sip_edge, "127.0.10.1", number, 8)
    assert burst.wait(timeout=60) == 0
    finals = final_statuses(messages)
    assert len(upstream_invites(sip_edge, number)) == 1
    assert sorted(finals.values()).count(TL2) == 7 and len(finals) == 8, finals
    # A call to another number is a count of its own.
    assert status(dial(sip_edge, "127.0.10.1", service_name()))[-1].startswith("SIP/2.0 200")


def test_a_call_longer_than_its_lease_stays_counted(sip_edge: Edge) -> None:
    conn_id = ip_connection(sip_edge.account(), "127.0.10.5", outbound={"channel_limit": 1})
    ready(sip_edge, "127.0.10.5", conn_id)
    held = sip_edge.sipp_background(
        "race.xml", local_ip="127.0.10.5", args=("-s", service_name(), "-d", "9000")
    )
    try:
        eventually(lambda: sip_edge.calls_of(conn_id) == 1, timeout=10)
        # Two leases (3 s each) later the edge has renewed the call (every second: route
        # RENEW_COUNTS), so it still holds the connection's one channel.
        time.sleep(6.5)
        assert sip_edge.calls_of(conn_id) == 1
        assert status(dial(sip_edge, "127.0.10.5", service_name(), refused=True)) == [D3]
        assert held.wait(timeout=20) == 0
        eventually(lambda: sip_edge.calls_of(conn_id) == 0, timeout=5)
    finally:
        if held.poll() is None:
            held.kill()


@pytest.mark.kamailio_errors(r".*")  # a Kamailio killed mid-call: its successor may log the lost dialog
def test_the_calls_of_a_killed_kamailio_age_out_of_the_counts(sip_edge: Edge) -> None:
    conn_id = ip_connection(sip_edge.account(), "127.0.10.2", outbound={"channel_limit": 1})
    ready(sip_edge, "127.0.10.2", conn_id)
    held = sip_edge.sipp_background(
        "race.xml", local_ip="127.0.10.2", args=("-s", service_name(), "-d", "30000")
    )
    try:
        eventually(lambda: sip_edge.calls_of(conn_id) == 1, timeout=10)
        assert status(dial(sip_edge, "127.0.10.2", service_name(), refused=True)) == [D3]
        supervisor = sip_edge.service.supervisor
        before = supervisor.pid
        assert before is not None
        os.killpg(before, signal.SIGKILL)
        killed_at = time.monotonic()
        # No one renews the killed Kamailio's call: within one lease (3 s) it leaves the count.
        eventually(lambda: sip_edge.calls_of(conn_id) == 0, timeout=6)
        assert time.monotonic() - killed_at < 3 + 1.5
        eventually(
            lambda: supervisor.pid not in (None, before) and supervisor.state.value == "running", timeout=15
        )
        # The connection's channel is free again for the restarted edge.
        assert status(dial(sip_edge, "127.0.10.2", service_name()))[-1].startswith("SIP/2.0 200")
    finally:
        held.kill()
        held.wait(timeout=10)


def test_with_redis_down_calls_are_refused_with_503_until_it_is_back(
    sip_edge: Edge, counts_redis: OwnRedis
) -> None:
    ready(sip_edge, "127.0.10.3", ip_connection(sip_edge.account(), "127.0.10.3"))
    offset = log_size(sip_edge)
    counts_redis.stop()
    try:
        refused = dial(sip_edge, "127.0.10.3", service_name(), refused=True)
        assert status(refused) == ["SIP/2.0 503 Service Unavailable"]
    finally:
        counts_redis.start()
    logged = log_since(sip_edge, offset)
    assert "shared call counts unavailable, calls are refused with 503" in logged
    assert "TRUNKLINE_SIP_COUNTERS_UNAVAILABLE" in logged and "ERROR" not in logged
    # The edge leaves an unreachable Redis alone for a second, then counts again.
    eventually(
        lambda: status(dial(sip_edge, "127.0.10.3", service_name()))[-1].startswith("SIP/2.0 200"),
        timeout=10,
        interval=0.5,
    )


def test_with_redis_down_and_the_admit_policy_calls_go_through_uncounted(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis_server = OwnRedis().start()
    try:
        with (
            migrated_database(backend, tmp_path_factory) as url,
            running_edge(
                url, backend, shared_counts=True, redis_url=redis_server.url, sip_counters_unavailable="admit"
            ) as edge,
        ):
            conn_id = ip_connection(edge.account(), "127.0.10.4", outbound={"channel_limit": 1})
            ready(edge, "127.0.10.4", conn_id)
            offset = log_size(edge)
            redis_server.stop()
            assert status(dial(edge, "127.0.10.4", service_name()))[-1].startswith("SIP/2.0 200")
            # Uncounted, so nothing holds the channel: a second call goes through as well.
            assert status(dial(edge, "127.0.10.4", service_name()))[-1].startswith("SIP/2.0 200")
            logged = log_since(edge, offset)
            assert "shared call counts unavailable, calls are admitted uncounted" in logged
            assert "ERROR" not in logged
            redis_server.start()
            eventually(lambda: edge.calls_of(conn_id) == 0, timeout=5)
    finally:
        redis_server.stop()
