"""Registration status of credential connections: what the SIP edge saw.

Telnyx lists the statuses but defines none of them
(https://developers.telnyx.com/api-reference/credential-connections/check-a-credential-connection-registration-status);
what each means here is trunkline's choice, pinned by tests/unit/test_registration_status.py.

Two sources, both written by Kamailio: the live bindings (usrloc `location`) and the newest REGISTER
outcome per user, which is what tells a de-REGISTER, a lapsed binding and a refused password apart
once the binding is gone. On PostgreSQL both are tables every edge writes and every API instance reads
(store/registrations.py); on SQLite the outcome is in the one edge's `reg` htable, read over JSON-RPC.

A third, for tests without a phone: a virtual registration set through the control API
(`PUT /_trunkline/registrations/{id}`, docs/testing-control.md). It is reported in the same shape;
when the edge saw something newer, the newer one wins, as between the edge's own two sources.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trunkline.errors import InvalidParameter, ResourceNotFound
from trunkline.resources._base import IpAddress, Port, validate
from trunkline.sip.state import RegistrationEvent
from trunkline.store import connections as store_connections
from trunkline.store import ids
from trunkline.store import registrations as store
from trunkline.store import virtual_registrations as store_virtual
from trunkline.store.db import Conn
from trunkline.store.locks import Lock

Status = Literal["Not Applicable", "Not Registered", "Failed", "Expired", "Unregistered", "Registered"]
EventReader = Callable[[str], Awaitable[RegistrationEvent | None]]


class RegistrationStatus(BaseModel):
    record_type: Literal["registration_status"] = "registration_status"
    status: Status
    sip_username: str
    ip_address: str | None = None
    port: int | None = None
    transport: str | None = None
    user_agent: str | None = None
    last_registration: str | None = None


@dataclass(frozen=True)
class EdgeView:
    """Where this API process finds what the SIP edge recorded."""

    # Kamailio's own SQLite file (None on PostgreSQL, where `location` is in our database).
    location_file: Path | None = None
    # The newest REGISTER outcome of a user; None when no edge runs here.
    last_event: EventReader | None = None


async def check(conn: Conn, user_id: str, id: str, edge: EdgeView | None = None) -> dict[str, Any]:
    row = await store_connections.get(conn, user_id=user_id, id=id, kind="credential")
    if row is None:
        raise ResourceNotFound(f"Credential connection {id} not found.")
    user_name = row["user_name"]
    if not row["active"]:
        return {"record_type": "registration_status", "status": "Not Applicable", "sip_username": user_name}
    edge = edge or EdgeView()
    found = await store.bindings(conn, user_name=user_name, sqlite_file=edge.location_file)
    event = await store.last_outcome(conn, user_name=user_name)
    if event is None and edge.last_event is not None:
        event = await edge.last_event(user_name)
    seen = decide(found, event, time.time())
    virtual = await store_virtual.get(conn, connection_id=id)
    # Timestamps share one fixed-width format, so text order is time order (store/schema.py).
    if virtual is not None and (seen.get("last_registration") or "") <= virtual["updated_at"]:
        seen = from_virtual(virtual, ids.now())
    return {"record_type": "registration_status", "sip_username": user_name, **seen}


def decide(bindings: list[store.Binding], event: RegistrationEvent | None, now: float) -> dict[str, Any]:
    """The status from the bindings and the newest outcome: the newest attempt wins (trunkline's choice)."""
    live = [b for b in bindings if b.expires > now]
    if event is not None and event.outcome == "fail":
        return {"status": "Failed", **_from_event(event)}
    if live and (event is None or event.outcome != "unreg" or live[0].last_modified > event.at):
        return {"status": "Registered", **_from_binding(live[0])}
    if event is not None:
        if event.outcome == "unreg":
            return {"status": "Unregistered", **_from_event(event)}
        # On SQLite `location` is written back every timer_interval: trust the edge's own clock.
        status = "Registered" if event.expires_at > now else "Expired"
        return {"status": status, **_from_event(event)}
    if bindings:
        return {"status": "Expired", **_from_binding(bindings[0])}
    return {"status": "Not Registered"}


def _from_event(event: RegistrationEvent) -> dict[str, Any]:
    return {
        "ip_address": event.ip_address,
        "port": event.port,
        "transport": event.transport,
        "user_agent": event.user_agent,
        "last_registration": _stamp(event.at),
    }


def _from_binding(binding: store.Binding) -> dict[str, Any]:
    host, port = _source(binding.received or binding.contact)
    return {
        "ip_address": host,
        "port": port,
        "transport": _transport(binding),
        "user_agent": binding.user_agent,
        "last_registration": _stamp(binding.last_modified),
    }


def _source(uri: str) -> tuple[str | None, int | None]:
    """Host and port of `sip:[user@]host[:port][;params]` (the received address, else the contact)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split(";", 1)[0].split(">", 1)[0].rsplit("@", 1)[-1]
    if rest.startswith("["):  # IPv6 reference
        host, _, tail = rest[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else 5060
    host, _, port = rest.partition(":")
    return host, int(port) if port.isdigit() else 5060


def _transport(binding: store.Binding) -> str:
    # The socket the REGISTER arrived on names it ("udp:127.0.0.1:5060"), else ;transport= params.
    if binding.socket and ":" in binding.socket:
        return binding.socket.split(":", 1)[0].upper()
    for uri in (binding.received or "", binding.contact):
        for param in uri.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "transport" and value:
                return value.strip(">").upper()
    return "UDP"


def _stamp(seconds: float) -> str:
    return ids.format_timestamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


# What a virtual registration may say: the statuses a phone's REGISTER outcomes produce.
VirtualStatus = Literal["Registered", "Failed", "Unregistered", "Expired"]
Transport = Literal["UDP", "TCP", "TLS", "WS", "WSS"]
# What a `Registered` virtual phone looks like when the body leaves a field out: an address from
# TEST-NET-1 (RFC 5737), SIP's default port and transport, and the default expiry of the SIP edge.
REGISTERED_DEFAULTS: dict[str, Any] = {
    "ip_address": "192.0.2.10",
    "port": 5060,
    "transport": "UDP",
    "user_agent": "trunkline virtual phone",
    "expires": 3600,
}


class VirtualRegistration(BaseModel):
    """The body of `PUT /_trunkline/registrations/{credential_connection_id}`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: VirtualStatus
    ip_address: IpAddress | None = None
    port: Port | None = None
    transport: Transport | None = None
    user_agent: str | None = Field(None, max_length=255)
    # Seconds until a `Registered` one turns `Expired` (a year at most).
    expires: int | None = Field(None, ge=1, le=31_536_000)


def from_virtual(row: Any, now: str) -> dict[str, Any]:
    """A stored virtual registration as check_registration_status reports it at `now`."""
    status = row["status"]
    if status == "Registered" and row["expires_at"] is not None and row["expires_at"] <= now:
        status = "Expired"
    return {
        "status": status,
        "ip_address": row["ip_address"],
        "port": row["port"],
        "transport": row["transport"],
        "user_agent": row["user_agent"],
        "last_registration": row["updated_at"],
    }


def virtual_values(body: dict[str, Any], *, at: dt.datetime) -> dict[str, Any]:
    """The columns of a virtual registration from a request body (or a state document's entry)."""
    data = validate(VirtualRegistration, body)
    given = data.model_dump(exclude_unset=True)
    if data.status != "Registered":
        if data.expires is not None:
            raise InvalidParameter("expires applies to a Registered registration only.", pointer="/expires")
        fields = {k: given.get(k) for k in ("ip_address", "port", "transport", "user_agent")}
        return {"status": data.status, **fields, "expires_at": None}
    values = {**REGISTERED_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    expires_at = ids.format_timestamp(at + dt.timedelta(seconds=values.pop("expires")))
    return {**values, "expires_at": expires_at}


async def put_virtual(
    conn: Conn, user_id: str, id: str, body: dict[str, Any], edge: EdgeView | None = None
) -> dict[str, Any]:
    """Set the connection's virtual registration; answers the status check_registration_status gives."""
    at = dt.datetime.now(dt.UTC)
    values = virtual_values(body, at=at)
    # REFERENCE: the connection must stay while a row pointing at it is written (store/locks.py).
    row = await store_connections.get(conn, user_id=user_id, id=id, kind="credential", lock=Lock.REFERENCE)
    if row is None:
        raise ResourceNotFound(f"Credential connection {id} not found.")
    stamp = ids.format_timestamp(at)
    await store_virtual.put(
        conn, connection_id=id, user_id=user_id, **values, created_at=stamp, updated_at=stamp
    )
    return await check(conn, user_id, id, edge)


async def delete_virtual(conn: Conn, user_id: str, id: str, edge: EdgeView | None = None) -> dict[str, Any]:
    """Remove the connection's virtual registration; answers the status left (the edge's, if any)."""
    row = await store_connections.get(conn, user_id=user_id, id=id, kind="credential", lock=Lock.REFERENCE)
    if row is None:
        raise ResourceNotFound(f"Credential connection {id} not found.")
    if not await store_virtual.delete(conn, connection_id=id):
        raise ResourceNotFound(f"Credential connection {id} has no virtual registration.")
    return await check(conn, user_id, id, edge)
