"""Wiring of the SIP edge: settings and store → the `sip` package's config, callables and readers.

app.py's counterpart for Kamailio. `sip/` never imports the store; this module hands it what it needs
as plain callables, and hands the API what it needs to read the edge's registrations back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import phonenumbers
import sqlalchemy as sa

import trunkline
from trunkline.config import Settings
from trunkline.resources.registrations import EdgeView
from trunkline.sip import call_log, dns
from trunkline.sip import upstreams as sip_upstreams
from trunkline.sip.reconcile import Reconciler
from trunkline.sip.rpc import KamailioError, RpcClient
from trunkline.sip.service import EdgeService
from trunkline.sip.state import AclSnapshot, Address, CallEvent, EdgeConfig, RegistrationEvent, Upstream
from trunkline.sip.supervisor import Supervisor
from trunkline.store import call_ingest, changes, notify, snapshot
from trunkline.store.db import Database

RUN_DIR = "run"
EDGE_DB_FILE = "kamailio.db"


def workdir(settings: Settings) -> Path:
    return settings.sip_dir.resolve()


def kamailio_db_url(database_url: str) -> str:
    """Our database URL as Kamailio's db modules spell it: `sqlite://` and the file's absolute path
    (https://kamailio.org/docs/modules/5.6.x/modules/db_sqlite.html, "Usage"), or `postgres://user:pass@host:port/db`."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return "sqlite://" + str(Path(url.database or "").resolve())
    auth = url.username or ""
    if url.password is not None:
        auth += f":{url.password}"
    host = f"{url.host or '127.0.0.1'}:{url.port or 5432}"
    return f"postgres://{auth}@{host}/{url.database}"


def is_sqlite(settings: Settings) -> bool:
    return sa.make_url(settings.database_url).get_backend_name() == "sqlite"


def upstreams(settings: Settings) -> tuple[Upstream, ...]:
    """The gateways of TRUNKLINE_SIP_UPSTREAMS, else the one of TRUNKLINE_SIP_UPSTREAM (the older
    setting); raises sip.upstreams.UpstreamError naming a bad entry."""
    if settings.sip_upstreams.strip():
        return sip_upstreams.parse(settings.sip_upstreams)
    if settings.sip_upstream:
        return sip_upstreams.parse(settings.sip_upstream, setting="TRUNKLINE_SIP_UPSTREAM")
    return ()


def edge_config(settings: Settings) -> EdgeConfig:
    base = workdir(settings)
    sqlite = is_sqlite(settings)
    app_url = kamailio_db_url(settings.sip_database_url or settings.database_url)
    return EdgeConfig(
        sip_host=settings.sip_host,
        sip_port=settings.sip_port,
        realm=settings.sip_realm,
        sip_domain=settings.sip_domain,
        engine="sqlite" if sqlite else "postgres",
        app_db_url=app_url,
        edge_db_url="sqlite://" + str(base / EDGE_DB_FILE) if sqlite else app_url,
        run_dir=base / RUN_DIR,
        algorithm=settings.sip_auth_algorithm,
        upstreams=upstreams(settings),
        upstream_probe_seconds=settings.sip_upstream_probe_seconds,
        reply_timeout_ms=settings.sip_reply_timeout_ms,
        min_expires=settings.sip_min_expires,
        max_expires=settings.sip_max_expires,
        default_expires=settings.sip_default_expires,
        timer_interval=settings.sip_timer_interval,
        children=settings.sip_children,
        tcp_children=settings.sip_children,
        python_path=python_path(),
        counters_url=settings.redis_url,
        counters_prefix=settings.redis_prefix,
        counter_lease_seconds=settings.sip_counter_lease_seconds,
        counters_unavailable=settings.sip_counters_unavailable,
        peers=settings.peers,
        **tls_settings(settings, base),
    )


TLS_DIR = "tls"


def tls_settings(settings: Settings, base: Path) -> dict[str, Any]:
    """The TLS listener: TRUNKLINE_SIP_TLS_PORT (unset: the SIP port + 1; 0: none), with the given
    certificate and key, or a self-signed pair kept in the edge's directory (sip/certs.py)."""
    port = settings.sip_port + 1 if settings.sip_tls_port is None else settings.sip_tls_port
    if port == 0:
        return {}
    cert, key = settings.sip_tls_cert, settings.sip_tls_key  # both or neither (config.py)
    if cert is not None and key is not None:
        return {"tls_port": port, "tls_cert": cert.resolve(), "tls_key": key.resolve()}
    tls = base / TLS_DIR
    return {"tls_port": port, "tls_cert": tls / "edge.crt", "tls_key": tls / "edge.key", "tls_generate": True}


def python_path() -> tuple[str, ...]:
    """Where this interpreter finds trunkline and phonenumbers, for Kamailio's embedded Python."""
    dirs = (Path(trunkline.__file__).parent.parent, Path(phonenumbers.__file__).parent.parent)
    return tuple(dict.fromkeys(str(d) for d in dirs))


def registration_view(settings: Settings) -> EdgeView:
    """How the API reads registrations on SQLite: Kamailio's file and its `reg` htable over RPC. On
    PostgreSQL both are in the shared database (store/registrations.py), whichever edge wrote them."""
    config = edge_config(settings)
    if not is_sqlite(settings):
        return EdgeView()
    rpc = RpcClient(config.rpc_socket, timeout=1.0)

    async def last_event(user_name: str) -> RegistrationEvent | None:
        try:
            result = await asyncio.to_thread(rpc.call, "htable.get", "reg", user_name)
        except KamailioError:  # no edge here, or nothing recorded for this user
            return None
        value = ((result or {}).get("item") or {}).get("value")
        return RegistrationEvent.parse(value) if isinstance(value, str) else None

    files = config.sqlite_files
    return EdgeView(location_file=Path(files[1]) if files else None, last_event=last_event)


def acl_waiting(settings: Settings, listener: notify.ChangeListener | None) -> dict[str, Any]:
    """How the reconciler waits between steps: woken by the ACL topic's announcements on PostgreSQL,
    polling only every change_safety_poll_seconds (sip_poll_seconds while they are not heard); else
    polling every sip_poll_seconds."""
    if listener is None:
        return {"poll_seconds": settings.sip_poll_seconds}
    acl = listener.subscribe(changes.ACL, unheard_seconds=settings.sip_poll_seconds)
    return {"poll_seconds": settings.change_safety_poll_seconds, "wait_for_change": acl.wait}


def service(settings: Settings, *, resolver: dns.Resolver | None = None) -> EdgeService:
    """Kamailio plus the reconciler that keeps its ACL in step with `settings.database_url`."""
    config = edge_config(settings)
    supervisor = Supervisor(config, workdir=workdir(settings), binary=settings.kamailio_binary)

    @contextlib.asynccontextmanager
    async def open_reconciler() -> AsyncIterator[Reconciler]:
        db = Database(settings.database_url)
        listener = notify.open_listener(db, enabled=settings.change_notifications)

        async def read_version() -> int:
            async with db.transaction() as conn:
                return await snapshot.acl_version(conn)

        async def load_snapshot() -> AclSnapshot:
            async with db.transaction() as conn:
                return await snapshot.load(conn)

        async def store_resolved(fqdn_id: str, addresses: frozenset[Address]) -> bool:
            async with db.transaction(write=True) as conn:
                return await snapshot.store_resolved(conn, fqdn_id=fqdn_id, addresses=addresses)

        async def reload() -> None:
            await asyncio.to_thread(supervisor.rpc.call, "permissions.addressReload")

        try:
            if listener is not None:
                await listener.start()
            yield Reconciler(
                read_version=read_version,
                load_snapshot=load_snapshot,
                store_resolved=store_resolved,
                reload=reload,
                resolver=resolver or dns.system_resolver,
                min_refresh_seconds=settings.sip_fqdn_min_refresh_seconds,
                max_refresh_seconds=settings.sip_fqdn_max_refresh_seconds,
                **acl_waiting(settings, listener),
            )
        finally:
            if listener is not None:
                await listener.stop()
            await db.dispose()

    async def import_calls(stop: asyncio.Event) -> None:
        db = Database(settings.database_url)

        async def ingest(events: list[CallEvent]) -> None:
            async with db.transaction(write=True) as conn:
                await call_ingest.ingest(conn, events)

        try:
            await call_log.pump(call_log.Reader(config.call_spool), ingest, stop)
        finally:
            await db.dispose()

    return EdgeService(supervisor, open_reconciler, import_calls)
