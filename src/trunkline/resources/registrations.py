"""Registration status of credential connections: what the SIP edge saw.

Telnyx lists the statuses but defines none of them
(https://developers.telnyx.com/api-reference/credential-connections/check-a-credential-connection-registration-status);
what each means here is trunkline's choice, pinned by tests/unit/test_registration_status.py.

Two sources, both written by Kamailio: the live bindings (usrloc `location`) and the newest REGISTER
outcome per user (the edge's `reg` htable, read over JSON-RPC), which is what tells a de-REGISTER, a
lapsed binding and a refused password apart once the binding is gone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from trunkline.errors import ResourceNotFound
from trunkline.sip.state import RegistrationEvent
from trunkline.store import connections as store_connections
from trunkline.store import ids
from trunkline.store import registrations as store
from trunkline.store.db import Conn

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
    event = await edge.last_event(user_name) if edge.last_event else None
    return {
        "record_type": "registration_status",
        "sip_username": user_name,
        **decide(found, event, time.time()),
    }


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
