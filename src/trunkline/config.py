"""Settings: read once from TRUNKLINE_* environment variables and CLI options, then passed down."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./trunkline.db"


class Settings(BaseSettings):
    """Everything trunkline can be told; each field is also a TRUNKLINE_<NAME> variable."""

    model_config = SettingsConfigDict(env_prefix="TRUNKLINE_", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="sqlite:///path or postgresql://...")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True
    # Bodies above this are refused with 413 before they are read whole.
    max_body_bytes: int = 1_048_576
    # How long a validated API key is trusted from the in-process cache: the bound on how late a
    # revocation takes effect on a running server.
    key_cache_seconds: float = 5.0
    # Rate limit per API key, in the `limits` library's notation ("100/second", "6000/minute"). The
    # default is generous: it stops a runaway loop, not a busy integration or a parallel test suite.
    rate_limit: str = "1000/second"
    # Failed authentications allowed per client address (IPv6: per /64) and minute; then 429.
    auth_failure_limit: int = 30
    # redis://host:port/db: rate-limit counters shared by every API instance, and the SIP edges' call
    # counts shared by every edge (docs/deploy.md); unset keeps both in process.
    redis_url: str | None = None
    # The prefix of trunkline's keys in Redis: deployments that share one Redis need one each.
    redis_prefix: str = Field("trunkline:", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    # Comma-separated addresses or CIDR blocks of proxies whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    # How often each instance reloads the access IP ranges (seconds); a change on this instance is
    # loaded at once. With change notifications (below) this is only the poll while they are not heard.
    access_gate_refresh_seconds: float = 2.0
    # On PostgreSQL, every API process and SIP edge LISTENs for the change announcements writers send
    # at commit (store/notify.py) and applies a change at once, polling only every
    # change_safety_poll_seconds in case one is missed. Off (e.g. behind a pooler that cannot LISTEN):
    # they poll every access_gate_refresh_seconds and sip_poll_seconds, as on SQLite.
    change_notifications: bool = True
    change_safety_poll_seconds: float = Field(30.0, gt=0)
    # `serve` closes a connection whose request (line, headers and body) takes longer than this to
    # arrive, and answers 431 to a request head larger than max_header_bytes (slow or bloated clients).
    request_read_timeout_seconds: float = 15.0
    max_header_bytes: int = 65_536
    # Snowflake node (0..1023) in ids; unset means a random node per process.
    node_id: int | None = None
    # Runtime directory for the SIP edge (rendered config, sockets, Kamailio's own database).
    sip_dir: Path = Path("./var/sip")
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_realm: str = "sip.trunkline.local"
    # SIP subdomains: `sip:anything@<inbound.sip_subdomain>.<sip_domain>` reaches that connection
    # (https://developers.telnyx.com/docs/voice/sip-trunking/features/sip-subdomains; docs/sip.md).
    sip_domain: str = Field("sip.trunkline.local", pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
    # SIP over TLS (RFC 3261 section 26.2.1, RFC 5630) on this port of sip_host; unset: sip_port + 1
    # (5061 beside 5060, as carriers offer it); 0: no TLS listener. Without sip_tls_cert and
    # sip_tls_key (PEM files), the edge makes a self-signed certificate on first start (docs/sip.md).
    sip_tls_port: int | None = Field(None, ge=0, le=65535)
    sip_tls_cert: Path | None = None
    sip_tls_key: Path | None = None
    # Digest algorithm of the SIP edge: one per instance; SHA-256 (RFC 8760) locks out MD5-only phones.
    sip_auth_algorithm: Literal["MD5", "SHA-256"] = "MD5"
    # Where the edge sends calls that are not for a registered user: comma-separated
    # "host:port[;transport=tcp]" gateways, tried in order (docs/sip.md, "Upstream carriers"). Unset:
    # the single gateway of sip_upstream, the older setting; neither: 480 D21.
    sip_upstreams: str = ""
    sip_upstream: str | None = None
    # Seconds between OPTIONS probes of each upstream gateway.
    sip_upstream_probe_seconds: int = Field(10, ge=1)
    # How long a request (an INVITE to a gateway, a probe) waits for any reply before the next gateway
    # is tried (Kamailio tm fr_timer), in milliseconds.
    sip_reply_timeout_ms: int = Field(5000, ge=100)
    # The URL Kamailio logs in with on PostgreSQL (e.g. as the trunkline_kamailio role that migration
    # 0002 creates); unset: the API's own database URL.
    sip_database_url: str | None = None
    sip_min_expires: int = 60
    sip_max_expires: int = 3600
    sip_default_expires: int = 3600
    # usrloc's timer: how long lapsed bindings linger and, on SQLite, how far `location` lags memory.
    sip_timer_interval: int = 10
    sip_children: int = 2
    # With shared call counts (redis_url): how long a call stays counted after its edge stopped
    # renewing it (an edge that crashed), and what a call gets while Redis does not answer.
    sip_counter_lease_seconds: int = Field(30, ge=3, le=3600)
    sip_counters_unavailable: Literal["refuse", "admit"] = "refuse"
    # The other SIP edges of the deployment, comma-separated IP addresses: a call one of them admits for
    # a device registered at this edge is relayed through this one (docs/deploy.md).
    sip_peers: str = ""
    # How often the edge looks for API changes (with change notifications: only while they are not
    # heard), and bounds on re-resolving FQDNs (their TTL between).
    sip_poll_seconds: float = 0.1
    sip_fqdn_min_refresh_seconds: float = 5.0
    sip_fqdn_max_refresh_seconds: float = 300.0
    kamailio_binary: str = "kamailio"
    # The control API under /_trunkline/ (docs/testing-control.md): reset, state, faults, the request
    # journal, virtual registrations. Off: those paths are unknown routes (404) and cost nothing.
    control: bool = False
    # A secret that may act on any account through the control API; compared in constant time.
    admin_token: str | None = Field(None, repr=False)
    # Request journal entries kept per account, in this process (the oldest are dropped).
    journal_limit: int = Field(1000, ge=1, le=100_000)
    # The largest state document PUT /_trunkline/state takes (about 2.5 KB a connection).
    control_max_body_bytes: int = 64 * 1_048_576

    # Webhook delivery (docs/webhooks.md): each API process runs a worker over the shared outbox
    # unless this is off (events are still written; another instance delivers them).
    webhook_delivery: bool = True
    # Attempts in flight per process, and to one receiver URL: a slow receiver holds only its own.
    webhook_concurrency: int = Field(32, ge=1, le=1024)
    webhook_per_receiver: int = Field(4, ge=1, le=1024)
    # How often an idle worker looks for due events.
    webhook_poll_seconds: float = Field(0.2, gt=0)
    # Retries: the first delay and its cap (doubling, with jitter), and how long an event is retried
    # after it was written before it is `failed`; delivered and failed events are kept this long.
    webhook_backoff_seconds: float = Field(1.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(300.0, gt=0)
    webhook_retry_seconds: float = Field(86_400.0, gt=0)
    webhook_keep_seconds: float = Field(7 * 86_400.0, gt=0)
    # Whether events may go to private, loopback and link-local addresses (checked on the address
    # each connection is made to: webhooks/addresses.py). Off, a tenant cannot make the server POST
    # into its own network; `serve --ephemeral` turns it on for receivers on the developer's machine.
    webhook_allow_private: bool = False

    @field_validator("node_id")
    @classmethod
    def _node_in_range(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= 1023:
            raise ValueError("node_id must be between 0 and 1023")
        return v

    @field_validator("sip_peers")
    @classmethod
    def _peers_are_addresses(cls, v: str) -> str:
        for peer in filter(None, (p.strip() for p in v.split(","))):
            try:
                ipaddress.ip_address(peer)
            except ValueError:
                raise ValueError(f"TRUNKLINE_SIP_PEERS: {peer!r} is not an IP address") from None
        return v

    @property
    def peers(self) -> tuple[str, ...]:
        """TRUNKLINE_SIP_PEERS as addresses, in their canonical spelling (how $si shows them)."""
        return tuple(str(ipaddress.ip_address(p.strip())) for p in self.sip_peers.split(",") if p.strip())

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.sip_tls_cert is None) != (self.sip_tls_key is None):
            raise ValueError("set both TRUNKLINE_SIP_TLS_CERT and TRUNKLINE_SIP_TLS_KEY, or neither")
        return self
