"""Registration status of credential connections: what the SIP edge saw (reference §3.3, decision 4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from trunkline.errors import ResourceNotFound
from trunkline.store import connections as store_connections
from trunkline.store import registrations as store
from trunkline.store.db import Conn

Status = Literal["Not Applicable", "Not Registered", "Failed", "Expired", "Unregistered", "Registered"]


class RegistrationStatus(BaseModel):
    record_type: Literal["registration_status"] = "registration_status"
    status: Status
    sip_username: str
    ip_address: str | None = None
    port: int | None = None
    transport: str | None = None
    user_agent: str | None = None
    last_registration: str | None = None


async def check(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    row = await store_connections.get(conn, user_id=user_id, id=id, kind="credential")
    if row is None:
        raise ResourceNotFound(f"Credential connection {id} not found.")
    user_name = row["user_name"]
    if not row["active"]:
        return {"record_type": "registration_status", "status": "Not Applicable", "sip_username": user_name}
    seen = await store.latest(conn, user_name=user_name)
    return {"record_type": "registration_status", "sip_username": user_name, **seen}
