"""Two SIP edges of one deployment, on hosts of their own (issue 13; docs/deploy.md, "SIP edges").

edge_a and edge_b run `trunkline sip` on the cluster's PostgreSQL (bindings in the shared `location`,
REGISTER outcomes in `sip_registration_outcome`) and count calls in its Redis with 3 s leases
(sip/counters.py); each names the other in TRUNKLINE_SIP_PEERS. The records are made through an API
node on api1, and registration status is read back through it. SIPp plays the phone (a credential
connection's device), the carrier host's PBX (an IP connection placing calls) and, on a host of its
own, the carrier's gateway behind both edges (TRUNKLINE_SIP_UPSTREAMS).

What is checked is what a user sees: status lines with their reason phrases, what the far end
received, check_registration_status, and the shared counts in Redis. A test fails when an edge's
kamailio.log got an ERROR line while it ran, except an edge the test killed and lines named with
`pytest.mark.kamailio_errors`.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
import telnyx
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.cluster import sipp
from tests.cluster.conftest import Cluster
from tests.cluster.hosts import Host, eventually, stop_together
from tests.cluster.nodes import (
    SIP_PORT,
    SIP_REALM,
    ApiNode,
    EdgeNode,
    kamailio_missing,
    start_api,
    start_edge,
    wait_edge_ready,
)
from tests.cluster.sipp import SCENARIOS, SIP_SCENARIOS, Message, Result
from tests.services import missing
from tests.sip.test_edge import PASSWORD, ip_connection, new_user, service_name

EDGES = ("edge_a", "edge_b")
LEASE_SECONDS = 3
# How late the count may lose a killed edge's call past its lease: polling, and the kill itself.
AGE_OUT_SLACK = 1.5
ADMITTED = "SIP/2.0 200 OK"
D3 = "SIP/2.0 403 Connection channel limit exceeded D3"  # Telnyx SIP Response Codes
TRANSPORT = {"u1": "UDP", "t1": "TCP"}


# --- the deployment -----------------------------------------------------------------------------


@dataclass
class Deployment:
    """The two edges, the API node and the gateway of this module, shared by its tests."""

    cluster: Cluster
    api: ApiNode
    gateway: sipp.Running
    prefix: str
    edges: dict[str, EdgeNode] = field(default_factory=dict)
    # The edges the running test killed: their logs are not checked (a killed Kamailio may log
    # anything on its way down) and they are started again before the next test.
    killed: set[str] = field(default_factory=set)

    @property
    def a(self) -> EdgeNode:
        return self.edges["edge_a"]

    @property
    def b(self) -> EdgeNode:
        return self.edges["edge_b"]

    def host(self, name: str) -> Host:
        return self.cluster.topology[name]

    def launch(self, name: str) -> EdgeNode:
        """`trunkline sip` on host `name`, not waited for. Its peer is the other edge (every edge lists
        the others: docs/deploy.md); 4 SIP workers, so that simultaneous INVITEs are handled in
        parallel (as tests/sip/conftest.py runs its edge); no TLS listener, which no test here uses."""
        (other,) = (self.host(n).ip for n in EDGES if n != name)
        settings = {
            "TRUNKLINE_SIP_PEERS": other,
            "TRUNKLINE_REDIS_PREFIX": self.prefix,
            "TRUNKLINE_SIP_COUNTER_LEASE_SECONDS": str(LEASE_SECONDS),
            "TRUNKLINE_SIP_UPSTREAMS": f"{self.gateway.proc.host.ip}:{self.gateway.port}",
            "TRUNKLINE_SIP_CHILDREN": "4",
            "TRUNKLINE_SIP_TLS_PORT": "0",
        }
        host = self.host(name)
        self.edges[name] = start_edge(
            host,
            database_url=self.cluster.database_url,
            sip_database_url=self.cluster.sip_database_url,
            redis_url=self.cluster.redis_url,
            env=settings,
            sip_dir=host.workdir / "sip-cluster",
            wait=False,
        )
        return self.edges[name]

    def revive(self) -> None:
        """Start again, side by side, every edge that is not running (one an earlier test killed)."""
        dead = [name for name in EDGES if name not in self.edges or not self.edges[name].proc.alive()]
        for edge in [self.launch(name) for name in dead]:
            wait_edge_ready(edge)

    def kill(self, name: str) -> None:
        """The edge's machine dies: SIGKILL to every process on its host (Host.kill)."""
        self.killed.add(name)
        assert self.host(name).kill(signal.SIGKILL)

    def alive(self) -> list[EdgeNode]:
        return [edge for name, edge in self.edges.items() if name not in self.killed]

    def counted(self, kind: str, owner: str) -> int:
        """Calls counted against one limit right now, all edges together: the unexpired members of
        its sorted set `<prefix>calls:<kind>:<JSON-quoted owner>` (sip/counters.py), read by Redis's
        own clock as the edges' scripts do, from the ops host."""
        key = f"{self.prefix}calls:{kind}:{json.dumps(owner)}"

        def read() -> int:
            client = redis.Redis.from_url(self.cluster.redis_url, socket_timeout=2)
            try:
                seconds, micros = client.time()
                now_ms = seconds * 1000 + micros // 1000
                return int(client.zcount(key, f"({now_ms}", "+inf"))
            finally:
                client.close()

        return self.cluster.ops.call(read)

    def gateway_calls(self, number: str) -> set[str]:
        """The Call-IDs of the INVITEs the gateway received for a dialled number (calls leave for the
        upstream with the number as +E.164: sip/numbers.py)."""
        digits = number.removeprefix("+")
        targets = (f"INVITE sip:{digits}@", f"INVITE sip:+{digits}@")
        return {
            m.header("Call-ID") or ""
            for m in self.gateway.trace.received("INVITE")
            if m.first_line.startswith(targets)
        }


def start_gateway(host: Host) -> sipp.Running:
    """The carrier's gateway: tests/sip/scenarios/gateway.xml with its probe answer filled in as
    tests/sip/test_upstreams.py does (Gateway.start), answering every call and every OPTIONS probe
    (an unanswered probe would mark it inactive: sip/templates/kamailio.cfg.tmpl, dispatcher)."""
    played = host.workdir / "gateway.xml"
    played.write_text((SIP_SCENARIOS / "gateway.xml").read_text().replace("@OPTIONS@", "200 OK"))
    gateway = sipp.start(host, played, label="gateway", port=SIP_PORT, calls=0)
    return gateway.wait_listening()


@pytest.fixture(scope="module")
def deployment(cluster: Cluster) -> Iterator[Deployment]:
    for reason in (kamailio_missing(), sipp.sipp_missing()):
        if reason:
            missing(reason)
    topology = cluster.topology
    gateway = start_gateway(topology.hosts.get("upstream") or topology.add_host("upstream"))
    api = start_api(topology["api1"], database_url=cluster.database_url, wait=False)
    deployment = Deployment(cluster, api, gateway, prefix=f"edges-{secrets.token_hex(4)}:")
    try:
        # Launched side by side, then awaited: each Kamailio's config check and start take seconds.
        launched = [deployment.launch(name) for name in EDGES]
        api.wait_ready()
        for edge in launched:
            wait_edge_ready(edge)
        yield deployment
    finally:
        procs = [edge.proc for edge in deployment.edges.values()]
        stop_together([*procs, *([api.proc] if api.proc else []), gateway.proc])


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.fixture
def edges(deployment: Deployment, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """The deployment with both edges running; the test fails on any ERROR line an edge it did not
    kill logged meanwhile, unless `pytest.mark.kamailio_errors(*patterns)` names it (as in
    tests/sip/conftest.py)."""
    deployment.revive()
    deployment.killed.clear()
    start = {name: _log_size(edge.kamailio_log) for name, edge in deployment.edges.items()}
    yield deployment
    marker = request.node.get_closest_marker("kamailio_errors")
    expected = [re.compile(p) for p in (marker.args if marker else ())]
    unexpected: list[str] = []
    for name, edge in deployment.edges.items():
        if name in deployment.killed or not edge.kamailio_log.exists():
            continue
        with edge.kamailio_log.open("rb") as log:
            log.seek(start.get(name, 0))
            new = log.read().decode(errors="replace")
        errors = [line for line in new.splitlines() if "ERROR" in line]
        unexpected += [f"{name}: {e}" for e in errors if not any(p.search(e) for p in expected)]
    assert not unexpected, "kamailio.log has ERROR lines:\n" + "\n".join(unexpected[:20])


@dataclass
class Account:
    """A new account of the test, through the API node on api1 (the SDK connecting from ops)."""

    deployment: Deployment
    client: telnyx.Telnyx
    ip_connections: list[str] = field(default_factory=list)

    def caller(self, **fields: Any) -> str:
        """An IP connection for the carrier host's address (a PBX), with an outbound voice profile,
        once every running edge admits that address (its ACL: permissions.addressDump)."""
        address = self.deployment.host("carrier").ip
        conn_id = ip_connection(self.client, address, **fields)
        self.ip_connections.append(conn_id)
        for edge in self.deployment.alive():
            eventually(
                functools.partial(acl_has, edge, address, conn_id),
                timeout=5,
                what=f"{address} of connection {conn_id} in the ACL of {edge.host}",
            )
        return conn_id

    def phone_user(self, **fields: Any) -> tuple[str, str]:
        """A credential connection (its user name, its id) the account's IP connections may call:
        SIP URI calls between one account's connections need `internal` (D30 otherwise;
        tests/sip/test_calls.py, _registered_phone)."""
        user = new_user()
        fields.setdefault("sip_uri_calling_preference", "internal")
        created = self.client.credential_connections.create(
            connection_name=user, user_name=user, password=PASSWORD, **fields
        )
        assert created.data is not None and created.data.id is not None
        return user, created.data.id

    def registration(self, conn_id: str) -> Any:
        return self.client.credential_connections.actions.check_registration_status(conn_id).data


@pytest.fixture
def account(edges: Deployment) -> Iterator[Account]:
    """The carrier host's address names one connection at a time (an IP connection is found by the
    source address: kamailio.cfg.tmpl route BY_ADDRESS), so each test's is deleted after it."""
    user_id = f"user-{uuid.uuid4().hex[:10]}"
    key = edges.cluster.mint_key(user_id)
    account = Account(edges, edges.api.sdk(key, via=edges.cluster.ops))
    yield account
    for conn_id in account.ip_connections:
        account.client.ip_connections.delete(conn_id)


# --- helpers ------------------------------------------------------------------------------------


def acl_has(edge: EdgeNode, address: str, tag: str) -> bool:
    dump = edge.rpc("permissions.addressDump") or []
    assert isinstance(dump, list)
    return any(entry["item"]["ip"] == address and entry["item"]["tag"] == tag for entry in dump)


def register(
    phone: Host,
    edge: EdgeNode,
    user: str,
    password: str = PASSWORD,
    *,
    port: int,
    transport: str = "u1",
    refused: bool = False,
) -> Result:
    """A REGISTER with digest credentials from the phone host (tests/sip/scenarios/register.xml, or
    register_refused.xml when the edge must refuse it)."""
    return sipp.run(
        phone,
        SIP_SCENARIOS / ("register_refused.xml" if refused else "register.xml"),
        remote=edge.host.ip,
        port=port,
        transport=transport,
        keys={"user": user, "realm": SIP_REALM, "expires": "300"},
        args=("-au", user, "-ap", password),
        label="register",
    )


def finals(statuses: list[str]) -> list[str]:
    """The final responses among status lines (RFC 3261 section 7.2: 1xx are provisional)."""
    return [s for s in statuses if not s.startswith("SIP/2.0 1")]


def via_hosts(message: Message) -> list[str]:
    """The sent-by host of each Via, top first: who sent the message, then who it passed through
    (RFC 3261 section 20.42, `SIP/2.0/UDP host[:port];params`)."""
    hosts = []
    for via in message.headers("Via"):
        sent_by = via.split()[1].split(";", 1)[0]  # "10.213.0.3" or "10.213.0.6:5080" (IPv4 here)
        hosts.append(sent_by.split(":", 1)[0])
    return hosts


def route_hosts(message: Message) -> list[str]:
    """The host of each Record-Route entry, in order (`<sip:host[:port];lr;...>`)."""
    hosts = []
    for entry in message.headers("Record-Route"):
        uri = entry.strip("<>").removeprefix("sip:")
        hosts.append(re.split(r"[:;>]", uri, maxsplit=1)[0])
    return hosts


def location_rows(cluster: Cluster, user: str) -> list[dict[str, Any]]:
    """The user's bindings in usrloc's shared table (db_mode 3 on PostgreSQL)."""

    async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
        stmt = sa.text("SELECT received, path FROM location WHERE username = :u").bindparams(u=user)
        return [dict(row._mapping) for row in await conn.execute(stmt)]

    return list(cluster.db(read))


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_a_call_admitted_at_edge_b_reaches_the_phone_through_edge_a_where_it_registered(
    edges: Deployment, account: Account, transport: str
) -> None:
    a, b = edges.a, edges.b
    phone, carrier = edges.host("phone"), edges.host("carrier")
    caller = account.caller()
    user, callee = account.phone_user()
    port = sipp.free_port(phone)

    registered = register(phone, a, user, port=port, transport=transport)
    assert registered.status_lines == ["SIP/2.0 401 Unauthorized", ADMITTED], registered.output
    # Read through the API node on api1: what edge A wrote to the shared `location` table.
    seen = account.registration(callee)
    assert (seen.status, seen.ip_address, seen.port) == ("Registered", phone.ip, port)
    assert seen.transport == TRANSPORT[transport]
    # Edge A stored itself as the binding's first hop, with the phone's address (RFC 3327 Path).
    (binding,) = location_rows(edges.cluster, user)
    assert f"<sip:{a.host.ip}:{SIP_PORT};lr;received=" in binding["path"]
    assert phone.ip in binding["path"]

    # The caller hangs up. A SIP URI call to the user, sent to edge B.
    answering = sipp.start(phone, SIP_SCENARIOS / "uas.xml", label="phone", port=port, transport=transport)
    answering.wait_listening()
    call = sipp.run(carrier, SIP_SCENARIOS / "uac.xml", remote=b.host.ip, args=("-s", user, "-d", "200"))
    # The INVITE's answer, then the BYE's. (Not the 180: the phone sends it and the 200 back to back,
    # and an edge whose workers relay the 200 first drops the later 1xx, RFC 3261 section 16.7 step 5.)
    assert finals(call.status_lines) == [ADMITTED, ADMITTED]
    assert call.returncode == 0, call.output
    assert answering.wait() == 0  # it answered, and the caller's BYE reached it
    (invite,) = answering.trace.received("INVITE")
    # The phone got the call from edge A, over the transport it registered with; both edges stay in
    # the dialog, edge A nearest the phone (RFC 3261 section 16.6, step 4: each proxy adds its
    # Record-Route on top). Over TCP edge A records itself twice, once per transport (rr's double
    # Record-Route, https://kamailio.org/docs/modules/5.6.x/modules/rr.html#rr.p.enable_double_rr).
    assert invite.transport == TRANSPORT[transport]
    assert via_hosts(invite) == [a.host.ip, b.host.ip, carrier.ip]
    hops = route_hosts(invite)
    assert (hops[0], hops[-1], set(hops)) == (a.host.ip, b.host.ip, {a.host.ip, b.host.ip})
    (bye,) = answering.trace.received("BYE")
    assert via_hosts(bye) == [a.host.ip, b.host.ip, carrier.ip]

    # The phone hangs up: its BYE goes back through edge A, then edge B, to the caller.
    hanging_up = sipp.start(
        phone,
        SCENARIOS / "phone_hangs_up.xml",
        label="phone",
        port=port,
        transport=transport,
        args=("-d", "200"),
    )
    hanging_up.wait_listening()
    hung_up_on = sipp.run(
        carrier, SCENARIOS / "caller_is_hung_up_on.xml", remote=b.host.ip, args=("-s", user)
    )
    assert finals(hung_up_on.status_lines) == [ADMITTED]
    assert hung_up_on.returncode == 0, hung_up_on.output
    assert hanging_up.wait() == 0
    assert hanging_up.trace.status_lines == [ADMITTED]  # the caller's answer to the phone's BYE
    (bye,) = hung_up_on.trace.received("BYE")
    assert via_hosts(bye) == [b.host.ip, a.host.ip, phone.ip]

    # Both calls left the shared counts at edge B, which admitted them: the caller's outbound channels
    # and the callee's inbound ones.
    eventually(
        lambda: (edges.counted("outc", caller), edges.counted("inc", callee)) == (0, 0),
        timeout=5,
        what="both calls out of the counts",
    )


def test_a_wrong_password_at_edge_b_reads_failed_through_the_api(edges: Deployment, account: Account) -> None:
    phone = edges.host("phone")
    user, callee = account.phone_user()
    port = sipp.free_port(phone)
    assert register(phone, edges.a, user, port=port).status_lines[-1] == ADMITTED
    assert account.registration(callee).status == "Registered"
    # The newest attempt wins whichever edge saw it (sip_registration_outcome, shared in PostgreSQL).
    refused = register(phone, edges.b, user, "not-the-password", port=port, refused=True)
    assert refused.status_lines == ["SIP/2.0 401 Unauthorized", "SIP/2.0 403 Forbidden"], refused.output
    seen = account.registration(callee)
    assert (seen.status, seen.ip_address, seen.port, seen.transport) == ("Failed", phone.ip, port, "UDP")


ROUNDS = 2
CALLS_EACH = 10


def burst(carrier: Host, edge: EdgeNode, number: str) -> sipp.Running:
    """CALLS_EACH INVITEs to `edge` within one millisecond (tests/sip/scenarios/race.xml with
    -r N -rp 1, as tests/sip/test_calls.py start_burst sends them); an admitted call holds 1 s, so
    every other INVITE arrives while it is up."""
    rate = str(CALLS_EACH)
    return sipp.start(
        carrier,
        SIP_SCENARIOS / "race.xml",
        label=f"burst-{edge.host.name}",
        remote=edge.host.ip,
        calls=CALLS_EACH,
        timeout=30,
        args=("-l", rate, "-r", rate, "-rp", "1", "-s", number, "-d", "1000"),
    )


def test_a_channel_limit_of_one_admits_one_call_across_both_edges_d3(
    edges: Deployment, account: Account
) -> None:
    carrier = edges.host("carrier")
    caller = account.caller(outbound={"channel_limit": 1})
    for _ in range(ROUNDS):
        number = service_name()
        # Both bursts at the same moment, one at each edge.
        bursts = [burst(carrier, edge, number) for edge in (edges.a, edges.b)]
        outcomes: dict[str, str] = {}
        for sent in bursts:
            assert sent.wait(timeout=60) == 0, sent.proc.tail_text()
            outcomes |= sent.trace.final_statuses()
        assert len(outcomes) == 2 * CALLS_EACH, outcomes
        assert sorted(outcomes.values()) == sorted([ADMITTED] + [D3] * (2 * CALLS_EACH - 1)), outcomes
        assert len(edges.gateway_calls(number)) == 1
        eventually(lambda: edges.counted("outc", caller) == 0, timeout=5, what="the call out of the count")


def test_a_killed_edges_call_ages_out_within_a_lease_and_its_phones_stay_registered(
    edges: Deployment, account: Account
) -> None:
    a, b = edges.a, edges.b
    phone, carrier = edges.host("phone"), edges.host("carrier")
    caller = account.caller(outbound={"channel_limit": 1})
    user, callee = account.phone_user()
    port = sipp.free_port(phone)
    assert register(phone, a, user, port=port).status_lines[-1] == ADMITTED
    # A call through edge A, held for longer than the test.
    held = sipp.start(
        carrier,
        SIP_SCENARIOS / "uac.xml",
        label="held",
        remote=a.host.ip,
        timeout=120,
        args=("-s", service_name(), "-d", "100000"),
    )
    try:
        eventually(lambda: edges.counted("outc", caller) == 1, timeout=10, what="the held call counted")
        # The count is shared: edge B refuses the connection's second call while edge A holds one.
        refused = sipp.run(
            carrier,
            SIP_SCENARIOS / "refusal.xml",
            remote=b.host.ip,
            keys={"extra": "X-Test: 1"},
            args=("-s", service_name()),
        )
        assert finals(refused.status_lines) == [D3]

        killed_at = time.monotonic()
        edges.kill("edge_a")
        # Nothing renews edge A's call any more: it leaves the count within one lease.
        eventually(
            lambda: edges.counted("outc", caller) == 0,
            timeout=LEASE_SECONDS + AGE_OUT_SLACK,
            what="the killed edge's call out of the count",
        )
        aged_out = time.monotonic() - killed_at
        assert aged_out <= LEASE_SECONDS + AGE_OUT_SLACK
        # The channel is free again: edge B admits the connection's next call, and the gateway gets it.
        number = service_name()
        call = sipp.run(carrier, SIP_SCENARIOS / "uac.xml", remote=b.host.ip, args=("-s", number, "-d", "50"))
        assert finals(call.status_lines) == [ADMITTED, ADMITTED]
        assert len(edges.gateway_calls(number)) == 1
    finally:
        held.stop()

    # The phone registered at edge A keeps its binding: the row is in PostgreSQL, not in edge A.
    seen = account.registration(callee)
    assert (seen.status, seen.ip_address, seen.port) == ("Registered", phone.ip, port)
    (binding,) = location_rows(edges.cluster, user)
    assert f"<sip:{a.host.ip}:{SIP_PORT};lr;received=" in binding["path"]
