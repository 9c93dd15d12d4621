"""Desired state of the SIP edge as plain frozen data: what Kamailio is configured with and enforces.

`EdgeConfig` is rendered into kamailio.cfg (it changes only with settings, so a change means a
restart). `AclSnapshot` is what the source-address ACL should hold and which FQDNs must be resolved;
it lives in the database and reaches a running Kamailio with `permissions.addressReload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Engine = Literal["sqlite", "postgres"]
Algorithm = Literal["MD5", "SHA-256"]


Transport = Literal["udp", "tcp"]


@dataclass(frozen=True)
class Upstream:
    """One gateway calls leave through: an IPv4 address, a port and the transport to reach it by."""

    host: str
    port: int
    transport: Transport = "udp"

    @property
    def uri(self) -> str:
        tail = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.host}:{self.port}{tail}"


CountersUnavailable = Literal["refuse", "admit"]


@dataclass(frozen=True)
class EdgeConfig:
    """Everything kamailio.cfg is rendered from."""

    sip_host: str
    sip_port: int
    realm: str
    engine: Engine
    # Kamailio's URL of the API's database (read-only for Kamailio) and of its own (registrations).
    app_db_url: str
    edge_db_url: str
    run_dir: Path
    # MD5 by default: Kamailio's auth `algorithm` is one per instance and sends one challenge, so
    # SHA-256 locks out MD5-only phones (https://kamailio.org/docs/modules/5.6.x/modules/auth.html).
    algorithm: Algorithm = "MD5"
    # Where calls go that are not for a registered user (carriers or PBXs), tried in this order
    # (sip/upstreams.py); none: 480 D21.
    upstreams: tuple[Upstream, ...] = ()
    # Seconds between OPTIONS probes of each upstream (dispatcher ds_ping_interval).
    upstream_probe_seconds: int = 10
    # How long a request waits for any reply before it counts as unanswered (tm fr_timer, ms): an
    # upstream that sends nothing within it is skipped and marked down, and so is an unanswered probe.
    reply_timeout_ms: int = 5000
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    # usrloc timer: bounds the expiry lag of rows and, with write-back, the lag of the location table.
    timer_interval: int = 10
    children: int = 2
    tcp_children: int = 2
    debug: int = 1
    # The domain under which `inbound.sip_subdomain` names a connection (request URI host
    # `<subdomain>.<sip_domain>`).
    sip_domain: str = "sip.trunkline.local"
    # The TLS listener's port (None: no TLS) and its certificate and private key (PEM files). With
    # tls_generate the two are made, self-signed, when missing (sip/certs.py).
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_generate: bool = False
    # Directories Kamailio's embedded Python needs on its path, after its own standard library: the
    # one holding the `trunkline` package and the one holding `phonenumbers` (sip/kamailio_app.py).
    python_path: tuple[str, ...] = ()
    # Call counts shared by every edge of the deployment (sip/counters.py): the Redis URL (None: each
    # edge counts its own calls in memory), the prefix of the keys, how long a call's count outlives
    # an edge that stopped renewing it, and what a call gets while Redis does not answer: refused
    # with 503, or admitted uncounted.
    counters_url: str | None = None
    counters_prefix: str = "trunkline:"
    counter_lease_seconds: int = 30
    counters_unavailable: CountersUnavailable = "refuse"
    # The other edges of the deployment, by IP address: calls they relay to devices registered here
    # are taken from them (kamailio.cfg route FROM_PEER), and from no one else.
    peers: tuple[str, ...] = ()

    @property
    def renew_seconds(self) -> int:
        """How often the edge renews its calls' leases: three times a lease, so one late renewal
        never lets a live call lapse."""
        return max(1, self.counter_lease_seconds // 3)

    @property
    def rpc_socket(self) -> Path:
        return self.run_dir / "kamailio_rpc.sock"

    @property
    def python_boot(self) -> Path:
        """The script app_python3 loads (rendered by sip/render.py)."""
        return self.run_dir / "kamailio_app.py"

    @property
    def tls_config(self) -> Path:
        """The tls module's configuration file (rendered by sip/render.py)."""
        return self.run_dir / "tls.cfg"

    @property
    def call_spool(self) -> Path:
        """The call log Kamailio's workers write and the importer reads (sip/call_log.py)."""
        return self.run_dir / "calls.db"

    @property
    def dispatcher_list(self) -> Path:
        """The upstreams as dispatcher's list file (rendered by sip/upstreams.py)."""
        return self.run_dir / "dispatcher.list"

    @property
    def sqlite_files(self) -> tuple[str, str] | None:
        """(API file, Kamailio file) when the edge runs on SQLite."""
        if self.engine != "sqlite":
            return None
        return sqlite_path(self.app_db_url), sqlite_path(self.edge_db_url)


def sqlite_path(kamailio_url: str) -> str:
    """The file of a db_sqlite URL: everything after `sqlite://`
    (https://kamailio.org/docs/modules/5.6.x/modules/db_sqlite.html, "Usage")."""
    return kamailio_url.removeprefix("sqlite://")


@dataclass(frozen=True, order=True)
class FqdnTarget:
    """One FQDN record to resolve: A records take its port, SRV records bring their own."""

    fqdn_id: str
    fqdn: str
    dns_record_type: str
    port: int | None


@dataclass(frozen=True, order=True)
class Address:
    """One resolved address an FQDN admits, and where an inbound call tries it: an SRV target's
    priority and weight (RFC 2782; 0 and 0 for an A record)."""

    ip_address: str
    port: int
    priority: int = 0
    weight: int = 0


@dataclass(frozen=True)
class AclSnapshot:
    """What the ACL topic stood at, and the FQDNs whose addresses feed it."""

    version: int
    fqdns: tuple[FqdnTarget, ...] = ()
    # What each FQDN currently resolves to in the database, so unchanged answers write nothing.
    resolved: dict[str, frozenset[Address]] = field(default_factory=dict)
    # A digest of the address table Kamailio would load now: writes that leave it unchanged (a new
    # credential connection, a renamed connection) cost no reload, so the next real change need not
    # wait for Kamailio's once-per-second reload window.
    acl_digest: str = ""


Outcome = Literal["ok", "unreg", "fail"]


@dataclass(frozen=True)
class RegistrationEvent:
    """The newest REGISTER outcome of one user, as the edge's `reg` htable records it."""

    at: float
    outcome: Outcome
    # When the user's last binding runs out (outcome "ok"), Unix seconds.
    expires_at: float
    ip_address: str
    port: int
    transport: str
    user_agent: str

    @classmethod
    def parse(cls, value: str) -> RegistrationEvent | None:
        """Read "<epoch>|<outcome>|<expiry>|<ip>|<port>|<proto>|<user agent>" (kamailio.cfg.tmpl)."""
        parts = value.split("|", 6)
        if len(parts) != 7 or parts[1] not in ("ok", "unreg", "fail"):
            return None
        try:
            return cls(
                at=float(parts[0]),
                outcome=parts[1],  # type: ignore[arg-type]
                expires_at=float(parts[2]),
                ip_address=parts[3],
                port=int(parts[4]),
                transport=parts[5].upper(),
                user_agent=parts[6],
            )
        except ValueError:
            return None


@dataclass(frozen=True)
class CallEvent:
    """One step of a call in the edge's call log (sip/call_log.py): start, answer or end."""

    seq: int
    record_id: str
    kind: str  # start | answer | end
    at_ms: int  # the server clock (real time plus the clock offset), ms since the epoch
    data: dict[str, Any]
