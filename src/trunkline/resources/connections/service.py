"""Operations on connections of every kind, and the rules that tie them to other resources."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from trunkline.errors import (
    DuplicateResource,
    InvalidParameter,
    MissingAssociation,
    ResourceNotFound,
    TelnyxError,
)
from trunkline.resources._base import deep_merge, raise_all, validate
from trunkline.resources.connections.kinds import BY_RECORD_TYPE, KINDS, Kind, KindSpec
from trunkline.store import changes, connection_documents, ids
from trunkline.store import connections as store
from trunkline.store import fqdns as store_fqdns
from trunkline.store import ips as store_ips
from trunkline.store import outbound_voice_profiles as store_profiles
from trunkline.store import phone_numbers as store_numbers
from trunkline.store.db import Conn
from trunkline.store.locks import Lock
from trunkline.store.paging import Page, PageResult

MASK = "********"
# Fields of the type-agnostic `/connections` view
# (https://developers.telnyx.com/api-reference/connections/list-connections).
SLIM_FIELDS = (
    "id",
    "record_type",
    "active",
    "anchorsite_override",
    "connection_name",
    "created_at",
    "updated_at",
    "tags",
    "webhook_api_version",
    "webhook_event_url",
    "webhook_event_failover_url",
)
# The records `inbound.default_*_id` point at, by `KindSpec.endpoint`.
ENDPOINT_STORES = {"ip": store_ips, "fqdn": store_fqdns}


def digests(user_name: str, realm: str, password: str) -> dict[str, str]:
    """What SIP digest authentication needs, so the password itself is never stored (trunkline's choice)."""
    md5 = hashlib.md5
    return {
        "username": user_name,
        "realm": realm,
        "ha1": md5(f"{user_name}:{realm}:{password}".encode()).hexdigest(),
        "ha1b": md5(f"{user_name}@{realm}:{realm}:{password}".encode()).hexdigest(),
        "ha1_sha256": hashlib.sha256(f"{user_name}:{realm}:{password}".encode()).hexdigest(),
    }


async def find(conn: Conn, user_id: str, id: str) -> RowMapping | None:
    """A connection of any kind in this account, or None."""
    return await store.get(conn, user_id=user_id, id=id)


async def attachment_errors(
    conn: Conn, user_id: str, connection_id: str, *, kind: Kind, what: str
) -> list[TelnyxError]:
    """Why `what` (IPs, FQDNs) cannot attach to `connection_id`: it must be a `kind` connection here."""
    owner = await store.get(conn, user_id=user_id, id=connection_id)
    if owner is None:
        return [MissingAssociation(f"Connection {connection_id} does not exist.", pointer="/connection_id")]
    if owner["kind"] != kind:
        return [
            InvalidParameter(
                f"Connection {connection_id} is a {owner['kind']} connection;"
                f" {what} attach to {KINDS[kind].title.replace(' connection', '')} connections only.",
                pointer="/connection_id",
            )
        ]
    return []


async def get_document(conn: Conn, user_id: str, spec: KindSpec, id: str) -> str:
    """The stored record as JSON text: the hot path serves it without parsing it."""
    document = await store.get_document(conn, user_id=user_id, id=id, kind=spec.kind)
    if document is None:
        raise ResourceNotFound(f"{spec.title} {id} not found.")
    return document


async def list_documents(
    conn: Conn, user_id: str, spec: KindSpec | None, page: Page, filters: dict[str, Any], sort: str
) -> tuple[list[str], PageResult]:
    result = await store.list_(
        conn,
        user_id=user_id,
        page=page,
        kind=spec.kind if spec else None,
        sort=sort,
        name_contains=filters.get("connection_name_contains"),
        outbound_voice_profile_id=filters.get("outbound_voice_profile_id"),
        fqdn_equals=filters.get("fqdn"),
    )
    return [row["document"] for row in result.rows], result


def slim(document: str) -> dict[str, Any]:
    """A connection as `/connections` shows it, with the outbound voice profile id flattened."""
    record = orjson.loads(document)
    out = {key: record.get(key) for key in SLIM_FIELDS}
    out["outbound_voice_profile_id"] = (record.get("outbound") or {}).get("outbound_voice_profile_id")
    return out


async def get_slim(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    """A connection of any kind as `/connections/{id}` shows it: its document alone, by a statement
    built once (store/connection_documents.py), the hot path as `get_document` is for one kind."""
    document = await connection_documents.get_document(conn, user_id=user_id, id=id)
    if document is None:
        raise ResourceNotFound(f"Connection {id} not found.")
    return slim(document)


async def create(
    conn: Conn, user_id: str, spec: KindSpec, body: dict[str, Any], *, realm: str
) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k not in spec.create_drops}
    raise_all(
        [
            InvalidParameter(
                f"'{p.rsplit('/', 1)[1]}' can only be set by updating the connection.", pointer=p
            )
            for p in spec.create_forbids
            if _set_at(body, p)
        ]
    )
    data = validate(spec.create, body)
    settings = data.model_dump(mode="json", exclude={"password"})
    if settings.get("webhook_api_version") == "texml":
        # The SDK's record type knows only "1" and "2"; TeXML applications receive version-2 webhooks.
        settings["webhook_api_version"] = "2"
    password: str | None = getattr(data, "password", None)
    if spec.generated_credentials:
        settings["user_name"], password = await _fresh_user_name(conn), secrets.token_urlsafe(18)
    await _check_rules(conn, user_id, spec, settings, own_id=None)

    stamp = ids.now()
    record = {"id": ids.numeric_id(), "record_type": spec.record_type, **settings}
    record.update({name: value for name, (_, value) in spec.read_only.items()})
    if spec.has_credentials:
        record["password"] = MASK
    record.update(created_at=stamp, updated_at=stamp)
    await store.insert(
        conn, id=record["id"], **columns(record, user_id, spec), created_at=stamp, updated_at=stamp
    )
    if spec.has_credentials:
        assert password is not None
        await store.put_credential(
            conn, connection_id=record["id"], **digests(record["user_name"], realm, password)
        )
    if spec.teams_sbc_fqdn and settings.get("microsoft_teams_sbc"):
        await _add_teams_fqdn(conn, user_id, record["id"], stamp)
    await changes.bump(conn, changes.ACL)
    return {**record, "password": password} if spec.has_credentials else record


async def update(
    conn: Conn, user_id: str, spec: KindSpec, id: str, body: dict[str, Any], *, realm: str
) -> dict[str, Any]:
    row = await _get_row(conn, user_id, spec, id, lock=Lock.UPDATE)
    body = {k: v for k, v in body.items() if k not in spec.update_drops}
    patch = validate(spec.update, body).model_dump(mode="json", exclude_unset=True)
    password = patch.pop("password", None) if spec.has_credentials else None
    if spec.generated_credentials:
        patch.pop("user_name", None)
    stored = orjson.loads(row["document"])
    merged = deep_merge(stored, patch)
    if spec.defaults_by_address:
        await _resolve_default_addresses(conn, spec, id, merged)
    settings = validate(spec.settings, merged).model_dump(mode="json")
    errors = await _rules(conn, user_id, spec, settings, own_id=id)
    # Only a caller-chosen user name can change; an FQDN connection's generated one is not in its
    # settings at all, so comparing it would see every FQDN connection PATCH as a rename.
    chosen = spec.has_credentials and not spec.generated_credentials
    user_name_changed = chosen and settings.get("user_name") != stored.get("user_name")
    if user_name_changed and password is None:
        # Digests bind the user name to the password; without the password they cannot be rebuilt.
        errors.append(
            InvalidParameter("Changing user_name requires the password as well.", pointer="/password")
        )
    raise_all(errors)

    stamp = ids.now()
    record = {**stored, **settings, "updated_at": stamp}
    await store.update(conn, id=id, **columns(record, user_id, spec), updated_at=stamp)
    if password is not None:
        await store.put_credential(conn, connection_id=id, **digests(record["user_name"], realm, password))
    await changes.bump(conn, changes.ACL)
    return {**record, "password": password} if password is not None else record


async def delete(conn: Conn, user_id: str, spec: KindSpec, id: str) -> dict[str, Any]:
    """Delete a connection with its IPs, FQDNs and credentials, in one transaction.

    The connection's phone numbers and endpoints are locked before the connection (store/locks.py's
    order); the foreign keys unassign the numbers and cascade to the rest. A second DELETE of the same
    connection finds nothing: 404.
    """
    await _get_row(conn, user_id, spec, id)  # this account's, of this kind: else 404, nothing locked
    await store_numbers.lock_on_connection(conn, connection_id=id)
    if spec.endpoint is not None:
        await ENDPOINT_STORES[spec.endpoint].lock_on_connection(conn, connection_id=id)
    row = await _get_row(conn, user_id, spec, id, lock=Lock.DELETE)
    if not await store.delete(conn, id=id):
        raise ResourceNotFound(f"{spec.title} {id} not found.")
    await changes.bump(conn, changes.ACL)
    record: dict[str, Any] = orjson.loads(row["document"])
    return record


async def forget_endpoint(conn: Conn, connection_id: str, endpoint_id: str) -> None:
    """Clear any `default_*_id` of a connection that points at an IP or FQDN leaving it.

    The caller holds the endpoint's row; the connection is locked here, after it (store/locks.py).
    """
    row = await store.get_any(conn, id=connection_id, lock=Lock.UPDATE)
    if row is None:
        return
    spec = BY_RECORD_TYPE[f"{row['kind']}_connection"]
    record = orjson.loads(row["document"])
    inbound = record.get("inbound") or {}
    cleared = [f for f in spec.default_fields if inbound.get(f) == endpoint_id]
    if cleared:
        for field in cleared:
            inbound[field] = None
        record["updated_at"] = ids.now()
        await store.update(conn, id=connection_id, document=_dump(record), updated_at=record["updated_at"])


async def _get_row(
    conn: Conn, user_id: str, spec: KindSpec, id: str, *, lock: Lock | None = None
) -> RowMapping:
    row = await store.get(conn, user_id=user_id, id=id, kind=spec.kind, lock=lock)
    if row is None:
        raise ResourceNotFound(f"{spec.title} {id} not found.")
    return row


async def _check_rules(
    conn: Conn, user_id: str, spec: KindSpec, settings: dict[str, Any], own_id: str | None
) -> None:
    raise_all(await _rules(conn, user_id, spec, settings, own_id))


async def _rules(
    conn: Conn, user_id: str, spec: KindSpec, settings: dict[str, Any], own_id: str | None
) -> list[TelnyxError]:
    """Rules that need the database: references in the account, uniqueness across the server."""
    errors: list[TelnyxError] = []
    outbound = settings.get("outbound") or {}
    profile_id = outbound.get("outbound_voice_profile_id")
    # Profile ids are digits like connection ids; anything else (a NUL, say) names no profile.
    if profile_id is not None and (
        not ids.is_numeric_id(profile_id)
        or await store_profiles.get(conn, user_id=user_id, id=profile_id, lock=Lock.REFERENCE) is None
    ):
        errors.append(
            MissingAssociation(
                f"Outbound voice profile {profile_id} does not exist.",
                pointer="/outbound/outbound_voice_profile_id",
            )
        )
    user_name = settings.get("user_name")
    if spec.has_credentials and not spec.generated_credentials and user_name:
        holder = await store.find_user_name(conn, user_name=user_name)
        if holder is not None and holder["id"] != own_id:
            errors.append(
                DuplicateResource(f"The user_name '{user_name}' is already taken.", pointer="/user_name")
            )
    token = outbound.get("ip_authentication_token")
    if token:
        holder = await store.find_token(conn, token=token)
        if holder is not None and holder["id"] != own_id:
            errors.append(
                DuplicateResource(
                    "This ip_authentication_token is already in use.",
                    pointer="/outbound/ip_authentication_token",
                )
            )
    subdomain = (settings.get("inbound") or {}).get("sip_subdomain")
    if subdomain:
        holder = await store.find_subdomain(conn, subdomain=subdomain)
        # Never which account holds it: that would tell one tenant about another.
        if holder is not None and holder["id"] != own_id:
            errors.append(
                DuplicateResource("This sip_subdomain is already in use.", pointer="/inbound/sip_subdomain")
            )
    errors.extend(await _default_errors(conn, spec, own_id, settings.get("inbound") or {}))
    return errors


async def _default_errors(
    conn: Conn, spec: KindSpec, own_id: str | None, inbound: dict[str, Any]
) -> list[TelnyxError]:
    wanted = {f: inbound.get(f) for f in spec.default_fields if inbound.get(f) is not None}
    if not wanted or spec.endpoint is None:
        return []
    endpoints = ENDPOINT_STORES[spec.endpoint]
    owned = await endpoints.ids_on_connection(conn, connection_id=own_id) if own_id else set()
    return [
        InvalidParameter(
            f"{field} must be the id of an {spec.endpoint.upper()} record on this connection.",
            pointer=f"/inbound/{field}",
        )
        for field, value in wanted.items()
        if value not in owned
    ]


async def _resolve_default_addresses(conn: Conn, spec: KindSpec, id: str, merged: dict[str, Any]) -> None:
    """Accept an address in `default_*_ip_id` when it names one of this connection's IPs.

    Telnyx's own IP connection PATCH example sends "192.168.0.0" there; the IP's id is stored.
    """
    inbound = merged.get("inbound") or {}
    addresses = {f: inbound[f] for f in spec.default_fields if isinstance(inbound.get(f), str)}
    if not addresses:
        return
    by_address = await store_ips.addresses_on_connection(conn, connection_id=id)
    for field, value in addresses.items():
        if value in by_address:
            inbound[field] = by_address[value]


async def _fresh_user_name(conn: Conn) -> str:
    while True:
        candidate = "fqdn" + secrets.token_hex(6)
        if await store.find_user_name(conn, user_name=candidate) is None:
            return candidate


async def _add_teams_fqdn(conn: Conn, user_id: str, connection_id: str, stamp: str) -> None:
    """Microsoft Teams SBC connections get their `*.mstsbc.telnyx.tech` FQDN, as Telnyx's spec says
    (https://developers.telnyx.com/api-reference/fqdn-connections/create-an-fqdn-connection)."""
    await store_fqdns.insert(
        conn,
        id=ids.numeric_id(),
        user_id=user_id,
        connection_id=connection_id,
        fqdn=f"{connection_id}.mstsbc.telnyx.tech",
        dns_record_type="a",
        port=5061,
        created_at=stamp,
        updated_at=stamp,
    )


def _set_at(body: dict[str, Any], pointer: str) -> bool:
    """Whether the body gives a value other than null at `pointer`.

    Null is these fields' default, so a create body may carry it: Telnyx's own FQDN connection
    examples send every `default_*_fqdn_id` key, and a client echoing a record back sends nulls.
    """
    node: Any = body
    for part in pointer.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node is not None


def _dump(record: dict[str, Any]) -> str:
    return orjson.dumps(record).decode()


def columns(record: dict[str, Any], user_id: str, spec: KindSpec) -> dict[str, Any]:
    """The columns lists filter and sort on and the SIP edge reads, beside the document."""
    inbound, outbound = record.get("inbound") or {}, record.get("outbound") or {}
    user_name = record.get("user_name") if spec.has_credentials else None
    return {
        "user_id": user_id,
        "kind": spec.kind,
        "connection_name": record.get("connection_name"),
        "active": record["active"],
        "outbound_voice_profile_id": outbound.get("outbound_voice_profile_id"),
        "user_name": user_name,
        "user_name_key": user_name.lower() if user_name else None,
        "ip_authentication_token": outbound.get("ip_authentication_token") or None,
        "tech_prefix": outbound.get("tech_prefix") or None,
        "inbound_channel_limit": inbound.get("channel_limit"),
        "outbound_channel_limit": outbound.get("channel_limit"),
        "sip_subdomain": inbound.get("sip_subdomain") or None,
        "document": _dump(record),
    }
