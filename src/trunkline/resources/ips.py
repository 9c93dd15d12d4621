"""IPs: the source addresses an IP connection admits
(https://developers.telnyx.com/api-reference/ips/create-an-ip)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import (
    DuplicateResource,
    ResourceNotFound,
    TelnyxError,
)
from trunkline.resources import connections
from trunkline.resources._base import IpAddress, Port, RecordModel, TelnyxModel, raise_all, validate
from trunkline.store import changes, ids
from trunkline.store import ips as store
from trunkline.store.db import Conn
from trunkline.store.locks import Lock
from trunkline.store.paging import Page, PageResult

DEFAULT_PORT = 5060


class IpCreate(TelnyxModel):
    ip_address: IpAddress = Field(description="IPv4 or IPv6 address.")
    connection_id: str | None = Field(None, description="ID of the IP connection this IP belongs to.")
    port: Port = Field(DEFAULT_PORT, description="Port where the IP is listening.")


class IpUpdate(TelnyxModel):
    # Telnyx's spec and SDK both require ip_address on update
    # (https://developers.telnyx.com/api-reference/ips/update-an-ip).
    ip_address: IpAddress
    connection_id: str | None = None
    port: Port | None = None


class Ip(RecordModel):
    id: str
    record_type: Literal["ip"] = "ip"
    ip_address: str
    connection_id: str | None = None
    port: int
    created_at: str
    updated_at: str


def record(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "record_type": "ip",
        "connection_id": row["connection_id"],
        "ip_address": row["ip_address"],
        "port": row["port"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def get(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    # The hot path: a statement built once (store/ips.py, `get_record`).
    row = await store.get_record(conn, user_id=user_id, id=id)
    if row is None:
        raise ResourceNotFound(f"IP {id} not found.")
    return record(row)


async def list_(
    conn: Conn, user_id: str, page: Page, filters: dict[str, Any]
) -> tuple[list[dict], PageResult]:
    result = await store.list_(
        conn,
        user_id=user_id,
        page=page,
        connection_id=filters.get("connection_id"),
        ip_address=filters.get("ip_address"),
        port=filters.get("port"),
    )
    return [record(r) for r in result.rows], result


async def create(conn: Conn, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    data = validate(IpCreate, body)
    await _check(conn, user_id, ip_address=data.ip_address, port=data.port, connection_id=data.connection_id)
    stamp = ids.now()
    values = {
        "id": ids.uuid_id(),
        "user_id": user_id,
        "connection_id": data.connection_id,
        "ip_address": data.ip_address,
        "port": data.port,
        "created_at": stamp,
        "updated_at": stamp,
    }
    await store.insert(conn, **values)
    await changes.bump(conn, changes.ACL)
    return record(values)


async def update(conn: Conn, user_id: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await _get_row(conn, user_id, id, lock=Lock.UPDATE)
    patch = validate(IpUpdate, body).model_dump(exclude_unset=True)
    merged = {**dict(row), **{k: v for k, v in patch.items() if not (k == "port" and v is None)}}
    await _check(
        conn,
        user_id,
        ip_address=merged["ip_address"],
        port=merged["port"],
        connection_id=merged["connection_id"],
        own_id=id,
    )
    if row["connection_id"] and row["connection_id"] != merged["connection_id"]:
        await connections.forget_endpoint(conn, row["connection_id"], id)
    changed = {k: merged[k] for k in ("ip_address", "port", "connection_id")}
    changed["updated_at"] = ids.now()
    await store.update(conn, id=id, **changed)
    await changes.bump(conn, changes.ACL)
    return record({**dict(row), **changed})


async def delete(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    row = await _get_row(conn, user_id, id, lock=Lock.DELETE)
    if row["connection_id"]:
        await connections.forget_endpoint(conn, row["connection_id"], id)
    if not await store.delete(conn, id=id):
        raise ResourceNotFound(f"IP {id} not found.")
    await changes.bump(conn, changes.ACL)
    return record(row)


async def _get_row(conn: Conn, user_id: str, id: str, *, lock: Lock | None = None) -> RowMapping:
    row = await store.get(conn, user_id=user_id, id=id, lock=lock)
    if row is None:
        raise ResourceNotFound(f"IP {id} not found.")
    return row


async def _check(
    conn: Conn,
    user_id: str,
    *,
    ip_address: str,
    port: int,
    connection_id: str | None,
    own_id: str | None = None,
) -> None:
    errors: list[TelnyxError] = []
    if connection_id is not None:
        errors += await connections.attachment_errors(conn, user_id, connection_id, kind="ip", what="IPs")
    taken = await store.find_address(conn, ip_address=ip_address, port=port)
    if taken is not None and taken["id"] != own_id:
        errors.append(
            DuplicateResource(
                f"{ip_address} port {port} is already in use by another IP.", pointer="/ip_address"
            )
        )
    raise_all(errors)
