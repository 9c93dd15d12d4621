"""Settings: read once from TRUNKLINE_* environment variables and CLI options, then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
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
    # Rate limit per API key, in the `limits` library's notation ("100/second", "6000/minute").
    rate_limit: str = "100/second"
    # Failed authentications allowed per client address and minute.
    auth_failure_limit: int = 30
    redis_url: str | None = None
    trusted_proxies: str = ""
    # How often each instance reloads the access IP ranges (seconds); a change on this instance is
    # loaded at once.
    access_gate_refresh_seconds: float = 2.0
    # Snowflake node (0..1023) in ids; unset means a random node per process.
    node_id: int | None = None
    # Runtime directory for the SIP edge (rendered config, sockets, Kamailio's own database).
    sip_dir: Path = Path("./var/sip")
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_realm: str = "sip.trunkline.local"

    @field_validator("node_id")
    @classmethod
    def _node_in_range(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= 1023:
            raise ValueError("node_id must be between 0 and 1023")
        return v
