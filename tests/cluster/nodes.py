"""trunkline's own processes on cluster hosts: API nodes (`trunkline serve`) and SIP edges
(`trunkline sip`), each listening on its host's address, started with the venv's `trunkline`."""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import telnyx

from tests.cluster.hosts import Host, Proc
from trunkline.sip.rpc import RpcClient

START_TIMEOUT = 60.0  # two shared cores, other suites running: generous, but bounded
API_PORT = 8080
SIP_PORT = 5060
# What tests/sip/conftest.py gives its edge, so that registrations and changes are seen quickly.
SIP_REALM = "sip.trunkline.test"
EDGE_DEFAULTS = {
    "TRUNKLINE_SIP_REALM": SIP_REALM,
    "TRUNKLINE_SIP_MIN_EXPIRES": "1",
    "TRUNKLINE_SIP_TIMER_INTERVAL": "1",
    "TRUNKLINE_SIP_POLL_SECONDS": "0.05",
}


def trunkline_binary() -> str:
    """The `trunkline` beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("trunkline")
    found = str(beside) if beside.exists() else shutil.which("trunkline")
    assert found, "no `trunkline` command: install the project (pip install -e .)"
    return found


@dataclass
class ApiNode:
    """`trunkline serve` on a host. `start()` (again after a kill) runs it and waits until it is ready."""

    host: Host
    database_url: str
    env: dict[str, str]
    port: int = API_PORT
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.ip}:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/v2"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def launch(self) -> ApiNode:
        """Start the process and return at once (several nodes then start side by side)."""
        argv = [trunkline_binary(), "serve", "--host", self.host.ip, "--port", str(self.port)]
        argv += ["--database-url", self.database_url]
        self.proc = self.host.popen(argv, env=self.env, log="trunkline-serve")
        return self

    def wait_ready(self) -> ApiNode:
        """Until GET /ready answers 200 (the process is up and its database answers: app.py) from the
        node's own host, on its address."""
        assert self.proc is not None, "launch() first"
        with self.host.http_client(timeout=2.0) as client:

            def ready() -> bool:
                try:
                    return client.get(f"{self.url}/ready").status_code == 200
                except httpx.HTTPError:
                    return False

            self.proc.wait_until(ready, timeout=START_TIMEOUT, what=f"trunkline serve ready at {self.url}")
        return self

    def start(self) -> ApiNode:
        return self.launch().wait_ready()

    def http(self, key: str, *, via: Host) -> httpx.Client:
        """A raw client of this node's /v2 with `key`, connecting from host `via`."""
        return via.http_client(base_url=self.api, headers={"Authorization": f"Bearer {key}"})

    def sdk(self, key: str, *, via: Host) -> telnyx.Telnyx:
        """The official SDK, strict response validation on, retries off, connecting from `via`."""
        return telnyx.Telnyx(
            api_key=key,
            base_url=self.api,
            max_retries=0,
            _strict_response_validation=True,
            http_client=via.http_client(),
        )


def start_api(
    host: Host,
    *,
    database_url: str,
    redis_url: str | None = None,
    env: Mapping[str, str] | None = None,
    port: int = API_PORT,
    wait: bool = True,
) -> ApiNode:
    """`trunkline serve` on `host`'s address; `env` adds or overrides TRUNKLINE_* settings. With
    `wait=False` it is only launched: call `wait_ready()` on it."""
    variables = {
        "TRUNKLINE_ACCESS_LOG": "false",
        "TRUNKLINE_WEBHOOK_POLL_SECONDS": "0.05",
        "TRUNKLINE_NODE_ID": node_id(host),
        # The API computes the digests a credential connection's password is stored as with its own
        # realm (http/routes/connections.py), so it must be the edges' realm, or every REGISTER at
        # an edge fails with 403.
        "TRUNKLINE_SIP_REALM": SIP_REALM,
    }
    if redis_url is not None:
        variables["TRUNKLINE_REDIS_URL"] = redis_url
    variables |= dict(env or {})
    node = ApiNode(host, database_url, variables, port)
    return node.start() if wait else node.launch()


def node_id(host: Host) -> str:
    """Processes on one database need distinct snowflake nodes (0-1023) for their ids never to clash
    (store/ids.py); the host's address within its subnet is one, for any subnet up to /22."""
    return str((int(ipaddress.IPv4Address(host.ip)) - int(host.topology.subnet.network_address)) % 1024)


def sip_options(host: Host, ip: str, port: int = SIP_PORT, timeout: float = 1.0) -> str | None:
    """Send one SIP OPTIONS over UDP from `host` to ip:port; the reply's status line, or None.

    A minimal request with the header fields every request needs (RFC 3261 section 8.1.1: Request-URI,
    To, From, CSeq, Call-ID, Max-Forwards, Via). The edge answers an OPTIONS to itself with 200
    (sip/templates/kamailio.cfg.tmpl)."""

    def exchange() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host.ip, 0))
            # Connected, the socket reports an ICMP port unreachable as ECONNREFUSED at once instead
            # of waiting out the timeout (udp(7), "Error handling").
            sock.connect((ip, port))
            sock.settimeout(timeout)
            local = sock.getsockname()[1]
            tag = secrets.token_hex(6)
            request = (
                f"OPTIONS sip:{ip}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host.ip}:{local};branch=z9hG4bK{tag};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{host.ip}>;tag={tag}\r\n"
                f"To: <sip:{ip}:{port}>\r\n"
                f"Call-ID: {tag}@{host.ip}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            try:
                sock.send(request.encode())
                reply = sock.recv(65535)
            except OSError:
                return None
            return reply.split(b"\r\n", 1)[0].decode(errors="replace")

    return host.call(exchange)


def kamailio_missing() -> str | None:
    if shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists():
        return (
            "kamailio is not installed (apt-get install kamailio kamailio-sqlite-modules "
            "kamailio-postgres-modules kamailio-python3-modules kamailio-tls-modules)"
        )
    return None


@dataclass
class EdgeNode:
    """`trunkline sip` (the SIP edge alone) on a host, with a directory of its own."""

    host: Host
    proc: Proc
    sip_port: int
    sip_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kamailio_log(self) -> Path:
        return self.sip_dir / "kamailio.log"  # sip/supervisor.py, Supervisor.log_path

    def rpc(self, method: str, *params: object) -> object:
        """One JSON-RPC call to this edge's Kamailio, over its unix socket in `<sip dir>/run`
        (edge.py RUN_DIR, sip/state.py EdgeConfig.rpc_socket), from the edge's host."""
        client = RpcClient(self.sip_dir / "run" / "kamailio_rpc.sock")
        return self.host.call(client.call, method, *params)


def start_edge(
    host: Host,
    *,
    database_url: str,
    sip_database_url: str | None = None,
    redis_url: str | None = None,
    env: Mapping[str, str] | None = None,
    port: int = SIP_PORT,
    sip_dir: Path | None = None,
    wait: bool = True,
) -> EdgeNode:
    """`trunkline sip` on `host`'s address, in `sip_dir` (default `<host workdir>/sip`). On
    PostgreSQL give `sip_database_url`, the URL of the role Kamailio logs in as (migration 0002
    creates `trunkline_kamailio`: tests/sip/conftest.py, running_edge). Waits until the edge answers
    SIP OPTIONS on its address, unless `wait=False` (then call `wait_edge_ready`)."""
    sip_dir = sip_dir or host.workdir / "sip"
    variables = {**EDGE_DEFAULTS, "TRUNKLINE_NODE_ID": node_id(host)}
    if sip_database_url is not None:
        variables["TRUNKLINE_SIP_DATABASE_URL"] = sip_database_url
    if redis_url is not None:
        variables["TRUNKLINE_REDIS_URL"] = redis_url
    variables |= dict(env or {})
    argv = [trunkline_binary(), "sip", "--sip-host", host.ip, "--sip-port", str(port)]
    argv += ["--sip-dir", str(sip_dir), "--database-url", database_url]
    proc = host.popen(argv, env=variables, log="trunkline-sip")
    edge = EdgeNode(host, proc, port, sip_dir, variables)
    return wait_edge_ready(edge) if wait else edge


def wait_edge_ready(edge: EdgeNode) -> EdgeNode:
    def answers() -> bool:
        status = sip_options(edge.host, edge.host.ip, edge.sip_port)
        return status is not None and status.startswith("SIP/2.0 200")

    edge.proc.wait_until(
        answers,
        timeout=START_TIMEOUT,
        what=f"the SIP edge answering OPTIONS on {edge.host.ip}:{edge.sip_port}",
    )
    return edge
