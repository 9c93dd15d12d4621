"""A real SIP edge per backend: Kamailio supervised by trunkline, an API server reading it, SIPp.

Everything runs on loopback with free ports. SIPp binds other 127.x addresses (-i) to play allowed and
foreign sources; a SIPp UAS on an address of its own (UPSTREAM_IP) plays the carrier behind the edge
(`sip_upstream`), so no caller shares the carrier's address. Every test using the edge fails when
Kamailio logged an ERROR line while it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import telnyx

from tests.conftest import mint_key, test_settings
from tests.server import LiveServer
from tests.services import REDIS_URL, forget, missing, redis_prefix
from trunkline import edge as edge_wiring
from trunkline.sip.dns import Resolution
from trunkline.sip.rpc import RpcClient
from trunkline.sip.service import EdgeService
from trunkline.sip.state import Address, FqdnTarget
from trunkline.store.db import Database

SCENARIOS = Path(__file__).parent / "scenarios"
REALM = "sip.trunkline.test"
UPSTREAM_IP = "127.0.0.2"
# What a call dials when a test does not say: a valid US number (sip/numbers.py).
DEFAULT_NUMBER = "12127363100"


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host (Kamailio listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            try:
                with socket.socket() as tcp:
                    tcp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")


class FakeResolver:
    """DNS answers the tests control (the edge never asks the internet)."""

    def __init__(self) -> None:
        self.answers: dict[str, frozenset[Address]] = {}
        self.asked: list[str] = []

    async def __call__(self, target: FqdnTarget) -> Resolution:
        self.asked.append(target.fqdn)
        return Resolution(self.answers.get(target.fqdn, frozenset()), ttl=5.0)


@dataclass
class SippResult:
    returncode: int
    messages: str
    stderr: str

    @property
    def status_lines(self) -> list[str]:
        return [line.strip() for line in self.messages.splitlines() if line.startswith("SIP/2.0 ")]


@dataclass
class Edge:
    """The running edge and what the tests need to drive it."""

    server: LiveServer
    service: EdgeService
    sip_port: int
    upstream_port: int
    database_url: str
    resolver: FakeResolver
    workdir: Path
    _uas: subprocess.Popen[bytes] | None = None
    used_ports: set[int] = field(default_factory=set)
    # With call counts shared in Redis (sip/counters.py): where, and the prefix of this edge's keys.
    counts_url: str = REDIS_URL
    counts_prefix: str | None = None

    @property
    def rpc(self) -> RpcClient:
        return self.service.supervisor.rpc

    def account(self) -> telnyx.Telnyx:
        key = mint_key(self.database_url, f"user-{uuid.uuid4().hex[:10]}")
        return telnyx.Telnyx(
            api_key=key, base_url=self.server.api, max_retries=0, _strict_response_validation=True
        )

    def _sipp_cmd(
        self,
        scenario: str,
        local_ip: str,
        local_port: int | None,
        keys: dict[str, str] | None,
        args: tuple[str, ...],
        timeout: float,
        messages: Path,
    ) -> list[str]:
        port = local_port or free_udp_tcp_port(local_ip)
        cmd = [
            "sipp",
            f"127.0.0.1:{self.sip_port}",
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            local_ip,
            "-p",
            str(port),
            "-m",
            "1",
            "-nostdin",
            "-recv_timeout",
            "5000",
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            str(messages),
        ]
        for name, value in (keys or {}).items():
            cmd += ["-key", name, value]
        if "-s" not in args:
            # SIPp dials "service" by default, which no dialling rules make a number (D14).
            cmd += ["-s", DEFAULT_NUMBER]
        return cmd + list(args)

    def sipp(
        self,
        scenario: str,
        *,
        local_ip: str = "127.0.0.1",
        local_port: int | None = None,
        keys: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        timeout: float = 20.0,
    ) -> SippResult:
        """Run one SIPp call of `scenario` against the edge and return how it went."""
        with tempfile.TemporaryDirectory(prefix="sipp-") as tmp:
            messages = Path(tmp) / "messages.log"
            cmd = self._sipp_cmd(scenario, local_ip, local_port, keys, args, timeout, messages)
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout + 10, cwd=tmp)
            text = messages.read_text(errors="replace") if messages.exists() else ""
            return SippResult(proc.returncode, text, proc.stderr.decode(errors="replace"))

    def sipp_background(
        self,
        scenario: str,
        *,
        local_ip: str = "127.0.0.1",
        local_port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """Start one SIPp call and return at once (for calls that must overlap)."""
        tmp = Path(tempfile.mkdtemp(prefix="sipp-bg-", dir=self.workdir))
        cmd = self._sipp_cmd(scenario, local_ip, local_port, None, args, 20.0, tmp / "messages.log")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)

    def calls_of(self, connection_id: str, *, profile: str = "outc") -> int:
        """Calls the edge counts against a channel limit right now (outc/inc/ovp/acct): its dialog
        profile, or with shared counts the counter in Redis (its unexpired members)."""
        if self.counts_prefix is not None:
            key = f"{self.counts_prefix}calls:{profile}:{json.dumps(connection_id)}"
            client = redis.Redis.from_url(self.counts_url)
            try:
                return int(client.zcount(key, int(time.time() * 1000), "+inf"))
            finally:
                client.close()
        result = self.rpc.call("dlg.profile_get_size", profile, connection_id)
        return int(result.get("size", 0)) if isinstance(result, dict) else int(result or 0)

    def register(
        self, user: str, password: str, *, expires: int = 60, refused: bool = False, **kw: Any
    ) -> SippResult:
        return self.sipp(
            "register_refused.xml" if refused else "register.xml",
            keys={"user": user, "realm": REALM, "expires": str(expires)},
            args=("-au", user, "-ap", password, *kw.pop("args", ())),
            **kw,
        )

    def acl(self) -> list[dict[str, Any]]:
        """What Kamailio's address table holds right now."""
        return [entry["item"] for entry in self.rpc.call("permissions.addressDump") or []]

    def db(self, work: Callable[..., Any]) -> Any:
        """Run `work(conn)` in one write transaction on the test database."""

        async def go() -> Any:
            db = Database(self.database_url)
            try:
                async with db.transaction(write=True) as conn:
                    return await work(conn)
            finally:
                await db.dispose()

        return asyncio.run(go())


@contextlib.contextmanager
def running_edge(
    database_url: str, backend: str, *, shared_counts: bool = False, **settings_overrides: Any
) -> Iterator[Edge]:
    """Kamailio, an API server and the upstream UAS on `database_url`, torn down after. With
    `shared_counts`, the edge counts calls in Redis (the test Redis unless `redis_url` is among the
    overrides; 3 s leases) under a prefix of its own."""
    for tool in ("kamailio", "sipp"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            missing(
                f"{tool} is not installed (apt-get install kamailio kamailio-sqlite-modules "
                "kamailio-postgres-modules kamailio-python3-modules kamailio-tls-modules sip-tester)"
            )
    workdir = Path(tempfile.mkdtemp(prefix=f"tl-sip-{backend}-"))
    sip_port, upstream_port = free_udp_tcp_port(), free_udp_tcp_port(UPSTREAM_IP)
    overrides: dict[str, Any] = {
        "sip_dir": workdir,
        "sip_host": "127.0.0.1",
        "sip_port": sip_port,
        "sip_tls_port": free_udp_tcp_port(),
        "sip_realm": REALM,
        "sip_upstream": f"{UPSTREAM_IP}:{upstream_port}",
        "sip_min_expires": 1,
        "sip_timer_interval": 1,
        "sip_poll_seconds": 0.05,
        # Several SIP workers per transport, so that simultaneous INVITEs are handled in parallel and
        # the race tests (test_calls.py) can catch an admission that is not atomic.
        "sip_children": 4,
    }
    if backend == "postgresql":
        # Kamailio logs in as the role migration 0002 created: SELECT on our views, `location` only.
        overrides["sip_database_url"] = database_url.replace("//postgres@", "//trunkline_kamailio@", 1)
    counts_url = str(settings_overrides.pop("redis_url", REDIS_URL))
    prefix = redis_prefix(counts_url) if shared_counts else None
    if prefix is not None:
        overrides |= {"redis_url": counts_url, "redis_prefix": prefix, "sip_counter_lease_seconds": 3}
    settings = test_settings(database_url, **(overrides | settings_overrides))
    resolver = FakeResolver()
    service = edge_wiring.service(settings, resolver=resolver).start_in_thread()
    server = LiveServer(settings).start()
    uas = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / "uas.xml"),
            "-i",
            UPSTREAM_IP,
            "-p",
            str(upstream_port),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(workdir / "uas.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    edge = Edge(server, service, sip_port, upstream_port, database_url, resolver, workdir, uas)
    edge.counts_url, edge.counts_prefix = counts_url, prefix
    try:
        yield edge
    finally:
        uas.terminate()
        uas.wait(timeout=10)
        server.stop()
        service.stop_thread()
        # TRUNKLINE_TEST_KEEP_EDGE=1 keeps the directory (kamailio.log, SIPp traces) to look at after.
        if not os.environ.get("TRUNKLINE_TEST_KEEP_EDGE"):
            shutil.rmtree(workdir, ignore_errors=True)
        if prefix is not None:
            with contextlib.suppress(redis.RedisError):
                forget(prefix, counts_url)


@pytest.fixture(scope="module")
def sip_edge(database_url: str, backend: str) -> Iterator[Edge]:
    with running_edge(database_url, backend) as edge:
        yield edge


@pytest.fixture
def pbxs(sip_edge: Edge) -> Iterator[Callable[..., Any]]:
    """`pbxs(ip, scenario="gateway.xml", final="")` starts a SIPp PBX route on `ip` (each SIP test
    module uses an address range of its own: modules share a database, and an address names a
    connection); every one started is stopped after the test."""
    from tests.sip.test_upstreams import Gateway  # a test module that imports this one

    started: list[Gateway] = []

    def start(ip: str, scenario: str = "gateway.xml", final: str = "") -> Gateway:
        log = sip_edge.workdir / f"pbx-{ip}-{uuid.uuid4().hex[:6]}.log"
        started.append(Gateway(ip, free_udp_tcp_port(ip), "udp", log).start(scenario, final=final))
        return started[-1]

    yield start
    for gw in started:
        gw.stop()


# Fixtures that hand a test a running edge; the log check below watches whichever a test uses.
EDGE_FIXTURES = ("sip_edge", "policy_edge")


@pytest.fixture(autouse=True)
def _no_kamailio_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that uses the edge when Kamailio logged an ERROR line while it ran."""
    used = [name for name in EDGE_FIXTURES if name in request.fixturenames]
    if not used:
        yield
        return
    edge: Edge = request.getfixturevalue(used[0])
    log = edge.service.supervisor.log_path
    start = log.stat().st_size if log.exists() else 0
    yield
    with log.open("rb") as f:
        f.seek(start)
        new = f.read().decode(errors="replace")
    # A test that breaks the edge's database on purpose names the errors it expects to cause.
    marker = request.node.get_closest_marker("kamailio_errors")
    expected = [re.compile(p) for p in (marker.args if marker else ())]
    errors = [line for line in new.splitlines() if "ERROR" in line]
    assert not [e for e in errors if not any(p.search(e) for p in expected)], (
        "kamailio.log has ERROR lines:\n" + "\n".join(errors[:20])
    )
