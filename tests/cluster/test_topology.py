"""The hosts are separate machines on one subnet: they reach each other over the bridge, never the
machine's own services, and the db host serves PostgreSQL and Redis to the others."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.cluster import datastores, netns
from tests.cluster.conftest import Cluster
from tests.cluster.hosts import Host, Topology, eventually, root_links
from tests.services import PG_PORT

PROBE_PORT = 7000


@contextmanager
def listening(host: Host, address: str | None = None, port: int = PROBE_PORT) -> Iterator[socket.socket]:
    """A TCP listener made on `host` (on its address unless told), closed after."""
    server = host.call(socket.create_server, (address or host.ip, port))
    try:
        yield server
    finally:
        server.close()


def peers_waiting(server: socket.socket, count: int) -> list[str]:
    """The source addresses of the `count` connections queued on a listener (their clients have
    closed them already: the backlog keeps them, listen(2))."""
    server.settimeout(5)
    peers = []
    for _ in range(count):
        conn, (peer, _) = server.accept()
        conn.close()
        peers.append(peer)
    return peers


def test_every_host_reaches_every_other_from_its_own_address(topology: Topology) -> None:
    hosts = list(topology.hosts.values())
    addresses = [h.ip for h in hosts]
    assert len(set(addresses)) == len(hosts)
    assert all(ipaddress.IPv4Address(a) in topology.subnet for a in addresses)
    with ExitStack() as stack:
        servers = {h.name: stack.enter_context(listening(h)) for h in hosts}
        for client in hosts:
            for other in hosts:
                if other is not client:
                    assert client.connects(other.ip, PROBE_PORT), f"{client} cannot reach {other}"
        for host in hosts:
            # Each listener saw every other host, each from that host's own address.
            others = sorted(h.ip for h in hosts if h is not host)
            assert sorted(peers_waiting(servers[host.name], len(others))) == others


def test_a_host_has_its_own_loopback_and_not_the_machines(topology: Topology) -> None:
    api1 = topology["api1"]
    # A service on the machine's loopback and on all its addresses, made in this (the machine's)
    # namespace: no host reaches it at any of the machine's addresses.
    machine = [i.split()[3].split("/")[0] for i in netns.ip("-4", "-o", "addr", "show").splitlines()]
    assert "127.0.0.1" in machine
    with socket.create_server(("0.0.0.0", 0)) as on_machine:
        port = on_machine.getsockname()[1]
        for host in topology.hosts.values():
            for address in machine:
                assert not host.connects(address, port, timeout=1), f"{host} reached the machine's {address}"
        # Nor the machine's PostgreSQL (tests/services.py): 127.0.0.1 on a host is the host's own.
        assert not api1.connects("127.0.0.1", PG_PORT)
    # The host's own loopback works, and only the host itself sees what listens there.
    with listening(api1, "127.0.0.1", PROBE_PORT):
        assert api1.connects("127.0.0.1", PROBE_PORT)
        assert not topology["api2"].connects("127.0.0.1", PROBE_PORT)


def test_the_topology_adds_nothing_to_the_machines_network(topology: Topology) -> None:
    assert frozenset(root_links()) == topology.root_links
    # Every host is a port of the one bridge, which lives in the switch namespace.
    ports = netns.ip("-n", topology.switch, "-o", "link", "show", "master", "br0")
    assert {line.split(":")[1].strip().split("@")[0] for line in ports.splitlines()} == {
        f"v-{name}" for name in topology.hosts
    }
    # Names carry this run's token (pid first), so parallel runs and leftovers never collide.
    assert set(topology.namespaces()) <= set(netns.namespaces())
    assert all(name.startswith(f"{netns.PREFIX}-{topology.token}-") for name in topology.namespaces())
    assert not netns.stale(topology.switch)


def test_the_db_host_serves_postgresql_and_redis_to_the_other_hosts(cluster: Cluster) -> None:
    topology, db = cluster.topology, cluster.postgres.host
    bindir = datastores.pg_bindir()
    assert bindir is not None
    for name in ("api1", "api2", "edge_a"):
        host = topology[name]
        # The server sees the client at that host's own address (inet_client_addr()).
        psql: list[str | Path] = [
            bindir / "psql",
            cluster.database_url,
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
        ]
        out = host.run([*psql, "--command", "SELECT inet_client_addr(), current_database()"]).stdout
        assert out.strip() == f"{host.ip}|trunkline"
        # Nothing of it is on the host's own loopback.
        assert not host.connects("127.0.0.1", cluster.postgres.port)
    # One Redis for all: what api1 writes, api2 reads.
    key, value = f"cluster-test:{uuid.uuid4().hex}", uuid.uuid4().hex
    redis = ["redis-cli", "-h", db.ip, "-p", str(cluster.redis.port)]
    assert topology["api1"].run([*redis, "SET", key, value]).stdout.strip() == "OK"
    assert topology["api2"].run([*redis, "GET", key]).stdout.strip() == value
    assert topology["api2"].run([*redis, "DEL", key]).stdout.strip() == "1"


def test_leftovers_of_a_crashed_run_are_swept(topology: Topology) -> None:
    # A run that died: its pid is gone, its namespace still has a process in it, its directory stays.
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not netns.pid_alive(dead.pid)
    name = f"{netns.PREFIX}-{dead.pid}-abcdef"
    netns.ip("netns", "add", f"{name}-db")
    leftover = Path(tempfile.gettempdir()) / name
    leftover.mkdir()
    orphan = subprocess.Popen(["ip", "netns", "exec", f"{name}-db", "sleep", "60"], start_new_session=True)
    try:
        eventually(
            lambda: netns.pids_in(f"{name}-db") == [orphan.pid], timeout=10, what="the orphan in place"
        )
        removed = netns.sweep_stale()
        assert f"{name}-db" in removed and str(leftover) in removed
        assert f"{name}-db" not in netns.namespaces() and not leftover.exists()
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        orphan.kill()
        orphan.wait()
        netns.delete(f"{name}-db")
        shutil.rmtree(leftover, ignore_errors=True)
    # This run's own names are alive, and were left alone.
    assert set(topology.namespaces()) <= set(netns.namespaces())


def test_without_root_or_iproute2_the_reason_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the topology fixture skips with locally, and fails with under CI=true (tests/services.py).
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "need root" in (netns.unavailable() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "iproute2" in (netns.unavailable() or "")
