"""Upstream carriers: several gateways tried in order, failover on 408, 5xx or silence, OPTIONS probes.

Each test runs an edge of its own (its gateways are part of its settings) beside the session's API
server, with SIPp gateways on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (free ports, so tests run side by
side) and the caller on an address of its own (127.0.0.7x). Probes run every second and a silent
gateway is given up after one second (TRUNKLINE_SIP_UPSTREAM_PROBE_SECONDS, _REPLY_TIMEOUT_MS).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import test_settings
from tests.server import LiveServer
from tests.sip.conftest import REALM, SCENARIOS, Edge, FakeResolver, eventually, free_udp_tcp_port
from tests.sip.test_calls import header, ready
from tests.sip.test_edge import ip_connection, service_name
from trunkline import edge as edge_wiring
from trunkline.cli import app

pytestmark = pytest.mark.sip

ADMITTED = "SIP/2.0 200 OK"
GW1, GW2, GW3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@dataclass
class Gateway:
    """One SIPp playing a carrier's gateway."""

    ip: str
    port: int
    transport: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def entry(self) -> str:
        return f"{self.ip}:{self.port}" + (";transport=tcp" if self.transport == "tcp" else "")

    @property
    def uri(self) -> str:
        return "sip:" + self.entry

    def start(self, scenario: str = "gateway.xml", *, options: str = "200 OK", final: str = "") -> Gateway:
        """Run `scenario` with its status lines filled in: `options` answers probes, `final` calls."""
        self.stop()
        if self.log.exists():
            self.log.rename(self.log.with_suffix(f".{time.monotonic_ns()}.log"))
        text = (SCENARIOS / scenario).read_text().replace("@OPTIONS@", options).replace("@FINAL@", final)
        played = self.log.with_suffix(".xml")
        played.write_text(text)
        cmd = ["sipp", "-sf", str(played), "-i", self.ip, "-p", str(self.port)]
        cmd += ["-t", "t1" if self.transport == "tcp" else "u1", "-nostdin", "-trace_msg"]
        cmd += ["-message_file", str(self.log)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.log.parent
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def invites(self, number: str) -> list[str]:
        """The INVITEs for `number` this gateway received (every log it wrote since the test began)."""
        logs = sorted(self.log.parent.glob(self.log.stem + "*.log"))
        text = "".join(p.read_text(errors="replace") for p in logs)
        blocks = text.split("----------------------------------------------- ")
        digits = number.removeprefix("+")
        # Calls leave for the upstream with the number as +E.164 (sip/numbers.py).
        return [b for b in blocks if any(f"\nINVITE sip:{n}@" in b for n in (digits, "+" + digits))]


@dataclass
class UpstreamEdge:
    edge: Edge
    gateways: list[Gateway]

    def states(self) -> dict[str, str]:
        """dispatcher's flags per gateway URI: "A…" active, "I…" inactive (dispatcher.list RPC)."""
        found: dict[str, str] = {}
        for record in self.edge.rpc.call("dispatcher.list").get("RECORDS", []):
            for target in record["SET"]["TARGETS"]:
                found[target["DEST"]["URI"]] = target["DEST"]["FLAGS"]
        return found

    def active(self, gateway: Gateway) -> bool:
        return self.states().get(gateway.uri, "").startswith("A")

    def caller(self, address: str) -> str:
        client = self.edge.account()
        conn_id = ip_connection(client, address)
        ready(self.edge, address, conn_id)
        return conn_id

    def call(self, source: str, number: str) -> Any:
        return self.edge.sipp(
            "call.xml", local_ip=source, keys={"extra": "X-Test: 1"}, args=("-s", number, "-d", "50")
        )

    def refused(self, source: str, number: str) -> Any:
        return self.edge.sipp("upstream_refused.xml", local_ip=source, args=("-s", number))


@pytest.fixture
def upstream_edge(
    database_url: str, backend: str, server: LiveServer
) -> Iterator[Callable[..., UpstreamEdge]]:
    """Start an edge whose upstreams are the given gateways (or `legacy`: TRUNKLINE_SIP_UPSTREAM)."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed")
    started: list[tuple[UpstreamEdge, Any]] = []
    workdirs: list[Path] = []

    def start(*gateways: tuple[str, str], probe_seconds: int = 1, legacy: bool = False) -> UpstreamEdge:
        workdir = Path(tempfile.mkdtemp(prefix=f"tl-up-{backend}-"))
        workdirs.append(workdir)
        gws = [
            Gateway(ip, free_udp_tcp_port(ip), transport, workdir / f"gw{n}.log")
            for n, (ip, transport) in enumerate(gateways, 1)
        ]
        entries = ",".join(g.entry for g in gws)
        overrides: dict[str, Any] = {
            "sip_dir": workdir,
            "sip_port": free_udp_tcp_port(),
            "sip_tls_port": free_udp_tcp_port(),
            "sip_realm": REALM,
            "sip_upstream" if legacy else "sip_upstreams": entries,
            "sip_upstream_probe_seconds": probe_seconds,
            "sip_reply_timeout_ms": 1000,
            "sip_poll_seconds": 0.05,
        }
        if backend == "postgresql":
            overrides["sip_database_url"] = database_url.replace("//postgres@", "//trunkline_kamailio@", 1)
        settings = test_settings(database_url, **overrides)
        # The session's database holds other tests' FQDN connections: the edge resolves them through
        # the fake resolver, never the machine's DNS (tests stay on the machine).
        resolver = FakeResolver()
        service = edge_wiring.service(settings, resolver=resolver).start_in_thread()
        edge = Edge(server, service, settings.sip_port, 0, database_url, resolver, workdir)
        up = UpstreamEdge(edge, gws)
        started.append((up, service))
        return up

    yield start
    errors: list[str] = []
    for up, service in started:
        # The edge stops first: a gateway's SIPp ends its TCP connections with a reset, which
        # Kamailio's core logs at ERROR (tcp_read_data: "Connection reset by peer") if it is still
        # reading them.
        service.stop_thread()
        for gw in up.gateways:
            gw.stop()
        log = service.supervisor.log_path
        text = log.read_text(errors="replace") if log.exists() else ""
        errors += [line for line in text.splitlines() if "ERROR" in line]
    for workdir in workdirs:
        shutil.rmtree(workdir, ignore_errors=True)
    assert not errors, "kamailio.log has ERROR lines:\n" + "\n".join(errors[:20])


def test_a_503_from_the_first_gateway_hands_the_call_to_the_second(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"))
    first, second = up.gateways
    first.start("gateway_refuse.xml", final="503 Service Unavailable")
    second.start()
    conn_id = up.caller("127.0.0.70")
    number = service_name()
    result = up.call("127.0.0.70", number)
    assert result.returncode == 0, result.status_lines
    assert result.status_lines[-2:] == [ADMITTED, ADMITTED]  # the INVITE's and the BYE's
    assert len(first.invites(number)) == 1
    (invite,) = second.invites(number)
    assert header(invite, "X-Connection-Id") == conn_id
    assert up.active(first)  # it answered: refused, not dead


def test_a_408_from_the_first_gateway_hands_the_call_to_the_second(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"))
    first, second = up.gateways
    first.start("gateway_refuse.xml", final="408 Request Timeout")
    second.start()
    up.caller("127.0.0.71")
    number = service_name()
    result = up.call("127.0.0.71", number)
    assert result.returncode == 0, result.status_lines
    assert (len(first.invites(number)), len(second.invites(number))) == (1, 1)


def test_a_silent_first_gateway_is_given_up_marked_down_and_skipped(upstream_edge: Any) -> None:
    # Probes far apart: what marks the dead gateway down here is the unanswered INVITE itself.
    up = upstream_edge((GW1, "udp"), (GW2, "udp"), probe_seconds=300)
    first, second = up.gateways  # nothing listens at the first
    second.start()
    up.caller("127.0.0.72")
    number = service_name()
    began = time.monotonic()
    result = up.call("127.0.0.72", number)
    assert result.returncode == 0, result.status_lines
    assert time.monotonic() - began >= 1.0  # it waited the reply timeout for the first gateway
    assert len(second.invites(number)) == 1
    assert not up.active(first)
    # The next call goes straight to the second gateway.
    again = service_name()
    began = time.monotonic()
    assert up.call("127.0.0.72", again).returncode == 0
    assert time.monotonic() - began < 0.9
    assert len(second.invites(again)) == 1


def test_a_486_from_the_first_gateway_is_passed_back_not_retried(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"))
    first, second = up.gateways
    first.start("gateway_refuse.xml", final="486 Busy Here")
    second.start()
    up.caller("127.0.0.73")
    number = service_name()
    result = up.refused("127.0.0.73", number)
    assert result.status_lines[-1] == "SIP/2.0 486 Busy Here"
    assert len(first.invites(number)) == 1
    assert not second.invites(number)


def test_a_408_then_a_486_gives_the_caller_the_486(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"))
    first, second = up.gateways
    first.start("gateway_refuse.xml", final="408 Request Timeout")
    second.start("gateway_refuse.xml", final="486 Busy Here")
    up.caller("127.0.0.74")
    number = service_name()
    assert up.refused("127.0.0.74", number).status_lines[-1] == "SIP/2.0 486 Busy Here"


def test_a_call_every_gateway_refuses_gets_the_last_gateways_status(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"), (GW3, "udp"))
    for gw, final in zip(
        up.gateways,
        ["502 Carrier One Bad Gateway", "500 Carrier Two Failed", "503 Carrier Three Unavailable"],
        strict=True,
    ):
        gw.start("gateway_refuse.xml", final=final)
    up.caller("127.0.0.75")
    number = service_name()
    result = up.refused("127.0.0.75", number)
    # Passed on as 503, not turned into 500: the edge has no gateway left to serve it (docs/sip.md).
    assert result.status_lines[-1] == "SIP/2.0 503 Carrier Three Unavailable"
    assert [len(gw.invites(number)) for gw in up.gateways] == [1, 1, 1]


def test_when_the_last_gateway_tried_is_silent_the_newest_final_status_wins(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"), probe_seconds=300)
    first, _second = up.gateways  # nothing listens at the second
    first.start("gateway_refuse.xml", final="500 Carrier One Failed")
    up.caller("127.0.0.76")
    result = up.refused("127.0.0.76", service_name())
    assert result.status_lines[-1] == "SIP/2.0 500 Carrier One Failed"


def test_a_call_no_gateway_answers_gets_503(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"), probe_seconds=300)  # nothing listens at either
    conn_id = up.caller("127.0.0.77")
    result = up.refused("127.0.0.77", service_name())
    assert result.status_lines[-1] == "SIP/2.0 503 Service Unavailable"
    # Both are marked down now: the next call is refused at once, and its channel given back.
    began = time.monotonic()
    assert up.refused("127.0.0.77", service_name()).status_lines[-1] == "SIP/2.0 503 Service Unavailable"
    assert time.monotonic() - began < 0.9
    eventually(lambda: up.edge.calls_of(conn_id) == 0, timeout=5)


def test_a_gateway_failing_its_probes_is_skipped_at_once_and_used_again_when_it_recovers(
    upstream_edge: Any,
) -> None:
    up = upstream_edge((GW1, "udp"), (GW2, "udp"))
    first, second = up.gateways
    first.start(options="503 Service Unavailable")  # would answer a call, but fails its probes
    second.start()
    up.caller("127.0.0.78")
    eventually(lambda: not up.active(first), timeout=5)
    number = service_name()
    began = time.monotonic()
    result = up.call("127.0.0.78", number)
    assert result.returncode == 0, result.status_lines
    assert time.monotonic() - began < 0.9  # no attempt at the first, no timeout
    assert not first.invites(number)
    assert len(second.invites(number)) == 1
    # It comes back: answered probes make it active, and it takes calls first again.
    first.start()
    eventually(lambda: up.active(first), timeout=5)
    back = service_name()
    assert up.call("127.0.0.78", back).returncode == 0
    assert len(first.invites(back)) == 1 and not second.invites(back)


def test_a_gateway_reached_over_tcp(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), (GW3, "tcp"))
    first, second = up.gateways
    first.start("gateway_refuse.xml", final="503 Service Unavailable")
    second.start()
    eventually(lambda: up.active(second), timeout=5)
    up.caller("127.0.0.79")
    number = service_name()
    result = up.call("127.0.0.79", number)
    assert result.returncode == 0, result.status_lines
    (invite,) = second.invites(number)
    assert (header(invite, "Via") or "").startswith("SIP/2.0/TCP")


def test_the_single_upstream_setting_still_works(upstream_edge: Any) -> None:
    up = upstream_edge((GW1, "udp"), legacy=True)
    (gateway,) = up.gateways
    gateway.start()
    up.caller("127.0.0.80")
    number = service_name()
    assert up.call("127.0.0.80", number).returncode == 0
    assert len(gateway.invites(number)) == 1


# --- bad settings, refused before anything starts ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (
            ["--sip-upstream", "127.0.0.2:5060", "--sip-upstream", "gw.example.net:5060"],
            {},
            "'gw.example.net:5060'",
        ),
        (["--sip-upstream", "127.0.0.2:5060;transport=tls"], {}, "transport 'tls' is not udp or tcp"),
        ([], {"TRUNKLINE_SIP_UPSTREAMS": "127.0.0.2:5060, 127.0.0.3:99999"}, "'127.0.0.3:99999'"),
        ([], {"TRUNKLINE_SIP_UPSTREAMS": "", "TRUNKLINE_SIP_UPSTREAM": "127.0.0.2"}, "'127.0.0.2'"),
    ],
)
@pytest.mark.parametrize("command", [["sip"], ["serve", "--sip"]])
def test_a_bad_upstream_is_refused_by_the_cli_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    args: list[str],
    env: dict[str, str],
    named: str,
) -> None:
    monkeypatch.setenv("TRUNKLINE_SIP_DIR", str(tmp_path / "sip"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    database = tmp_path / "t.db"
    result = CliRunner().invoke(app, [*command, "--database-url", f"sqlite:///{database}", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output and "expected host:port[;transport=tcp]" in result.output
    assert not database.exists() and not (tmp_path / "sip").exists()  # refused before anything was written
