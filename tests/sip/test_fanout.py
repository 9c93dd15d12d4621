"""Every SIP edge on one PostgreSQL database applies an API change within a second, woken by the
writer's announcement (store/changes.py, store/notify.py), while polling only every 30 s.

Two real edges (Kamailio supervised by trunkline) and an API server share a database of this
module's own; callers use 127.0.9.x and the carrier behind the edges (a SIPp UAS) 127.0.9.2. Every
poll interval is 30 s, so a change an edge applies within the second is one it was told about.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import test_settings
from tests.server import LiveServer
from tests.services import end_listening_sessions, missing, postgres_database
from tests.sip.conftest import REALM, SCENARIOS, Edge, FakeResolver, eventually, free_udp_tcp_port
from tests.sip.test_edge import call, in_acl, profile, reached_target
from trunkline import edge as edge_wiring
from trunkline.store import migrate, notify

pytestmark = pytest.mark.sip

UPSTREAM_IP = "127.0.9.2"
SLOW_POLL = 30.0
APPLIES_WITHIN = 1.0
REFUSED = "SIP/2.0 403 Forbidden - source not allowed"


@dataclass
class Fleet:
    database_url: str
    server: LiveServer
    edges: list[Edge]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    for tool in ("kamailio", "sipp"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            missing(f"{tool} is not installed")
    with postgres_database() as url:
        migrate.upgrade(url)
        workdir = Path(tempfile.mkdtemp(prefix="tl-fanout-"))
        upstream_port = free_udp_tcp_port(UPSTREAM_IP)
        uas_cmd = ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", UPSTREAM_IP, "-p", str(upstream_port)]
        uas_cmd += ["-nostdin", "-trace_msg", "-message_file", str(workdir / "uas.log")]
        uas = subprocess.Popen(uas_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
        common: dict[str, Any] = {
            "sip_poll_seconds": SLOW_POLL,
            "change_safety_poll_seconds": SLOW_POLL,
            "access_gate_refresh_seconds": SLOW_POLL,
            "sip_realm": REALM,
            "sip_upstream": f"{UPSTREAM_IP}:{upstream_port}",
            "sip_database_url": url.replace("//postgres@", "//trunkline_kamailio@", 1),
            "sip_children": 1,
        }
        services = []
        server = LiveServer(test_settings(url, **common)).start()
        try:
            edges = []
            for n in range(2):
                sip_dir = workdir / f"edge{n}"
                settings = test_settings(
                    url,
                    sip_dir=sip_dir,
                    sip_port=free_udp_tcp_port(),
                    sip_tls_port=free_udp_tcp_port(),
                    **common,
                )
                service = edge_wiring.service(settings, resolver=FakeResolver()).start_in_thread()
                services.append(service)
                # One workdir for all: reached_target reads the carrier's log from it.
                edges.append(
                    Edge(server, service, settings.sip_port, upstream_port, url, FakeResolver(), workdir)
                )
            yield Fleet(url, server, edges)
        finally:
            server.stop()
            for service in services:
                service.stop_thread()
            uas.terminate()
            uas.wait(timeout=10)
            errors = []
            for service in services:
                log = service.supervisor.log_path
                text = log.read_text(errors="replace") if log.exists() else ""
                errors += [line for line in text.splitlines() if "ERROR" in line]
            shutil.rmtree(workdir, ignore_errors=True)
        assert not errors, "kamailio.log has ERROR lines:\n" + "\n".join(errors[:20])


def reload_window_open(fleet: Fleet) -> None:
    """Wait until every edge's Kamailio would take a reload now (one per wall-clock second: see
    sip/reconcile.py, Reloader), so what is timed below is the announcement, not that window."""

    def open_() -> bool:
        return all(
            edge.service.reconciler is not None
            and not edge.service.reconciler.reloader.dirty
            and time.time() >= edge.service.reconciler.reloader.not_before
            for edge in fleet.edges
        )

    eventually(open_, timeout=5, interval=0.01)


def lag_until(check: Any, since: float) -> float:
    eventually(check, timeout=APPLIES_WITHIN + 5, interval=0.005)
    return time.monotonic() - since


def test_the_edges_poll_slowly_and_listen(fleet: Fleet) -> None:
    for edge in fleet.edges:
        reconciler = edge.service.reconciler
        assert reconciler is not None and reconciler.poll_seconds == SLOW_POLL


def test_a_new_ip_is_admitted_by_every_edge_within_a_second(fleet: Fleet, record_property: Any) -> None:
    caller = "127.0.9.10"
    client = fleet.edges[0].account()
    refused, _ = call(fleet.edges[0], caller, refused=True)
    assert refused.status_lines[-1] == REFUSED
    conn_id = client.ip_connections.create(
        connection_name="pbx", outbound={"outbound_voice_profile_id": profile(client)}
    ).data.id
    reload_window_open(fleet)
    written = time.monotonic()
    client.ips.create(ip_address=caller, connection_id=conn_id)
    lags = [lag_until(lambda e=edge: in_acl(e, caller, conn_id), written) for edge in fleet.edges]
    record_property("fanout_new_ip_lag_s", [round(lag, 3) for lag in lags])
    print(f"\na new IP reached the edges' ACLs after {', '.join(f'{lag * 1000:.0f} ms' for lag in lags)}")
    assert max(lags) < APPLIES_WITHIN
    for edge in fleet.edges:
        result, number = call(edge, caller, args=("-d", "50"))
        assert result.returncode == 0, result.status_lines
        assert reached_target(edge, number)


def test_a_removed_ip_is_refused_by_every_edge_within_a_second(fleet: Fleet) -> None:
    caller = "127.0.9.11"
    client = fleet.edges[0].account()
    conn_id = client.ip_connections.create(
        connection_name="pbx", outbound={"outbound_voice_profile_id": profile(client)}
    ).data.id
    ip_id = client.ips.create(ip_address=caller, connection_id=conn_id).data.id
    for edge in fleet.edges:
        eventually(lambda e=edge: in_acl(e, caller, conn_id), timeout=3)
    reload_window_open(fleet)
    written = time.monotonic()
    client.ips.delete(ip_id)
    lags = [lag_until(lambda e=edge: not in_acl(e, caller, conn_id), written) for edge in fleet.edges]
    assert max(lags) < APPLIES_WITHIN
    for edge in fleet.edges:
        result, _ = call(edge, caller, refused=True)
        assert result.status_lines[-1] == REFUSED


def test_a_change_made_while_the_listeners_reconnect_still_arrives(fleet: Fleet) -> None:
    # Every listening session of this database ends (the edges' and the API's); the IP is written at
    # once, likely before they listen again: the reconnect itself makes each edge reread.
    caller = "127.0.9.12"
    client = fleet.edges[0].account()
    conn_id = client.ip_connections.create(
        connection_name="pbx", outbound={"outbound_voice_profile_id": profile(client)}
    ).data.id
    reload_window_open(fleet)

    assert (
        end_listening_sessions(fleet.database_url, notify.APPLICATION_NAME) == 3
    )  # two edges and the API server
    written = time.monotonic()
    client.ips.create(ip_address=caller, connection_id=conn_id)
    lags = [lag_until(lambda e=edge: in_acl(e, caller, conn_id), written) for edge in fleet.edges]
    # The listeners' first retry comes 0.05-0.1 s after the loss (store/notify.py).
    assert max(lags) < APPLIES_WITHIN + 0.5
    result, _ = call(fleet.edges[1], caller, args=("-d", "50"))
    assert result.returncode == 0, result.status_lines
