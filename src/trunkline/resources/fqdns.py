"""FQDNs: the host names an FQDN connection is reached at and admits calls from
(https://developers.telnyx.com/api-reference/fqdns/create-an-fqdn)."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import (
    DuplicateResource,
    InvalidParameter,
    ResourceNotFound,
    TelnyxError,
)
from trunkline.resources import connections
from trunkline.resources._base import (
    Hostname,
    Port,
    RecordModel,
    TelnyxModel,
    partial_model,
    raise_all,
    validate,
)
from trunkline.store import changes, ids
from trunkline.store import fqdns as store
from trunkline.store.db import Conn
from trunkline.store.locks import Lock
from trunkline.store.paging import Page, PageResult

RECORD_TYPE: Final = "fqdn"
DEFAULT_PORT = 5060
DnsRecordType = Literal["a", "srv"]


class FqdnCreate(TelnyxModel):
    connection_id: str = Field(description="ID of the FQDN connection this FQDN belongs to.")
    fqdn: Hostname = Field(description="The host name, e.g. example.com.")
    dns_record_type: DnsRecordType = Field(description="'a' with a port, 'srv' without one.")
    # No default here: an absent port and an explicit null mean different things (see `_settle_port`).
    port: Port | None = Field(None, description="Port of an 'a' record (5060 when absent); null for 'srv'.")


class FqdnUpdate(partial_model(FqdnCreate)):  # type: ignore[misc]
    """PATCH body: every field optional; the merged record obeys the create rules
    (https://developers.telnyx.com/api-reference/fqdns/update-an-fqdn)."""


class Fqdn(RecordModel):
    id: str
    record_type: Literal["fqdn"] = RECORD_TYPE
    connection_id: str
    fqdn: str
    dns_record_type: DnsRecordType
    port: int | None = None
    created_at: str
    updated_at: str


def record(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "record_type": RECORD_TYPE,
        "connection_id": row["connection_id"],
        "fqdn": row["fqdn"],
        "dns_record_type": row["dns_record_type"],
        "port": row["port"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def get(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    # The hot path: a statement built once (store/fqdns.py, `get_record`).
    row = await store.get_record(conn, user_id=user_id, id=id)
    if row is None:
        raise ResourceNotFound(f"FQDN {id} not found.")
    return record(row)


async def list_(
    conn: Conn, user_id: str, page: Page, filters: dict[str, Any]
) -> tuple[list[dict[str, Any]], PageResult]:
    result = await store.list_(
        conn,
        user_id=user_id,
        page=page,
        connection_id=filters.get("connection_id"),
        fqdn_equals=filters.get("fqdn"),
        port=filters.get("port"),
        dns_record_type=filters.get("dns_record_type"),
    )
    return [record(r) for r in result.rows], result


async def create(conn: Conn, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    data = validate(FqdnCreate, body)
    port = await _check(
        conn,
        user_id,
        connection_id=data.connection_id,
        name=data.fqdn,
        dns_record_type=data.dns_record_type,
        port=data.port,
        port_given="port" in data.model_fields_set,
    )
    stamp = ids.now()
    values = {
        "id": ids.numeric_id(),
        "user_id": user_id,
        "connection_id": data.connection_id,
        "fqdn": data.fqdn,
        "dns_record_type": data.dns_record_type,
        "port": port,
        "created_at": stamp,
        "updated_at": stamp,
    }
    await store.insert(conn, **values)
    await changes.bump(conn, changes.ACL)
    return record(values)


async def update(conn: Conn, user_id: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await _get_row(conn, user_id, id, lock=Lock.UPDATE)
    patch = validate(FqdnUpdate, body).model_dump(exclude_unset=True)
    merged = {k: patch.get(k, row[k]) for k in ("connection_id", "fqdn", "dns_record_type")}
    if "port" in patch or merged["dns_record_type"] == row["dns_record_type"]:
        port, port_given = patch.get("port", row["port"]), True
    else:
        # A new record type without a port takes that type's default, as on create.
        port, port_given = None, False
    merged["port"] = await _check(
        conn,
        user_id,
        connection_id=merged["connection_id"],
        name=merged["fqdn"],
        dns_record_type=merged["dns_record_type"],
        port=port,
        port_given=port_given,
        own_id=id,
    )
    if merged["connection_id"] != row["connection_id"]:
        await connections.forget_endpoint(conn, row["connection_id"], id)
    merged["updated_at"] = ids.now()
    await store.update(conn, id=id, **merged)
    await changes.bump(conn, changes.ACL)
    return record({**dict(row), **merged})


async def delete(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    row = await _get_row(conn, user_id, id, lock=Lock.DELETE)
    await connections.forget_endpoint(conn, row["connection_id"], id)
    if not await store.delete(conn, id=id):
        raise ResourceNotFound(f"FQDN {id} not found.")
    await changes.bump(conn, changes.ACL)
    return record(row)


async def _get_row(conn: Conn, user_id: str, id: str, *, lock: Lock | None = None) -> RowMapping:
    row = await store.get(conn, user_id=user_id, id=id, lock=lock)
    if row is None:
        raise ResourceNotFound(f"FQDN {id} not found.")
    return row


def _settle_port(dns_record_type: str, port: int | None, port_given: bool) -> int | None:
    """The port a record keeps, by the SDK's rule: a port means 'a', no port means 'srv', and an
    'a' record sent without a port gets 5060. An explicit null is "no port"; an absent key is not."""
    if not port_given:
        return DEFAULT_PORT if dns_record_type == "a" else None
    if dns_record_type == "srv" and port is not None:
        raise InvalidParameter(
            "An 'srv' record takes no port (SRV answers carry their own); send port null, or use 'a'.",
            pointer="/dns_record_type",
        )
    if dns_record_type == "a" and port is None:
        raise InvalidParameter(
            "An 'a' record needs a port; leave port out for 5060, or use 'srv' for no port.",
            pointer="/dns_record_type",
        )
    return port


async def _check(
    conn: Conn,
    user_id: str,
    *,
    connection_id: str,
    name: str,
    dns_record_type: str,
    port: int | None,
    port_given: bool,
    own_id: str | None = None,
) -> int | None:
    """Every rule at once; returns the port to store."""
    errors: list[TelnyxError] = []
    errors += await connections.attachment_errors(conn, user_id, connection_id, kind="fqdn", what="FQDNs")
    try:
        port = _settle_port(dns_record_type, port, port_given)
    except InvalidParameter as exc:
        errors.append(exc)
    else:
        await store.lock_address(conn, name=name, port=port)
        taken = await store.find_address(conn, name=name, port=port)
        if taken is not None and taken["id"] != own_id:
            where = f"port {port}" if port is not None else "as an SRV record"
            errors.append(
                DuplicateResource(f"{name} {where} is already in use by another FQDN.", pointer="/fqdn")
            )
    raise_all(errors)
    return port
