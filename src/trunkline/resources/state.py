"""An account's records as one JSON document: reset, export and restore (docs/testing-control.md).

The document (`"format": 1`) holds the account's outbound voice profiles, connections (the stored
records, every kind), IPs, FQDNs, access IP ranges, the SIP digests of credential and FQDN
connections (`credentials`: never passwords, which trunkline does not keep) and virtual
registrations. Ids and timestamps are kept, so a document exported and restored reads back the same.

A restore checks the whole document before it writes anything, and reports every problem at once
with a JSON pointer into the document (`/connections/3/user_name`): shapes, references inside the
document, and what must stay unique across the server (ids, SIP user names, IP authentication
tokens, SIP subdomains, IP address and port, FQDN and port). It then replaces the account's records
in the caller's transaction: the reset and the inserts commit together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

import orjson
import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from trunkline.errors import (
    DuplicateResource,
    InvalidParameter,
    MissingAssociation,
    TelnyxError,
    TelnyxErrors,
    entries_of,
)
from trunkline.resources import fqdns, ips, registrations
from trunkline.resources._base import Hostname, IpAddress, Port, raise_all, validate
from trunkline.resources.access_ip_ranges import CidrBlock
from trunkline.resources.connections import BY_RECORD_TYPE, KINDS, KindSpec
from trunkline.resources.connections.kinds import Kind
from trunkline.resources.connections.models import UserName
from trunkline.resources.connections.service import MASK
from trunkline.resources.connections.service import columns as connection_columns
from trunkline.resources.outbound_voice_profiles import RECORD_TYPE as PROFILE_RECORD_TYPE
from trunkline.resources.outbound_voice_profiles import OutboundVoiceProfileCreate
from trunkline.resources.outbound_voice_profiles import columns as profile_columns
from trunkline.store import accounts, changes, ids
from trunkline.store import fqdns as store_fqdns
from trunkline.store.access_ip_ranges import TOPIC as ACCESS_TOPIC
from trunkline.store.db import Conn
from trunkline.store.schema import (
    access_ip_range,
    connection,
    fqdn,
    ip,
    outbound_voice_profile,
    sip_credential,
    virtual_registration,
)

FORMAT = 1
# Lists of a document, in the order they are checked and inserted (parents before children).
SECTIONS = (
    "outbound_voice_profiles",
    "connections",
    "ips",
    "fqdns",
    "access_ip_ranges",
    "credentials",
    "registrations",
)
# The most records one document may hold in all (a body is bounded by TRUNKLINE_MAX_BODY_BYTES too).
MAX_RECORDS = 200_000

M = TypeVar("M", bound=BaseModel)


def _numeric(value: str) -> str:
    if not ids.is_numeric_id(value):
        raise ValueError("must be a numeric id of up to 20 digits")
    return value


def _uuid(value: str) -> str:
    if not ids.is_uuid(value) or "\x00" in value:
        raise ValueError("must be a UUID")
    return value.lower()


NumericId = Annotated[str, AfterValidator(_numeric)]
UuidId = Annotated[str, AfterValidator(_uuid)]
# The stored timestamp format (store/schema.py): fixed width, so text order is time order.
Stamp = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Lenient(BaseModel):
    """Record entries: what the API adds when it reads (`connections_count`) may come along; ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


class Document(_Strict):
    format: int
    outbound_voice_profiles: list[dict[str, Any]] = Field(default_factory=list)
    connections: list[dict[str, Any]] = Field(default_factory=list)
    ips: list[dict[str, Any]] = Field(default_factory=list)
    fqdns: list[dict[str, Any]] = Field(default_factory=list)
    access_ip_ranges: list[dict[str, Any]] = Field(default_factory=list)
    credentials: list[dict[str, Any]] = Field(default_factory=list)
    registrations: list[dict[str, Any]] = Field(default_factory=list)


class _Stamped(_Lenient):
    created_at: Stamp
    updated_at: Stamp


class ProfileMeta(_Stamped):
    id: NumericId
    record_type: Literal["outbound_voice_profile"] = PROFILE_RECORD_TYPE


class ConnectionMeta(_Stamped):
    id: NumericId
    record_type: Literal["credential_connection", "fqdn_connection", "ip_connection"]


class FqdnUser(_Lenient):
    """The generated SIP user name an FQDN connection record carries (connections/kinds.py)."""

    user_name: UserName


class IpEntry(_Stamped):
    id: UuidId
    record_type: Literal["ip"] = "ip"
    connection_id: NumericId | None = None
    ip_address: IpAddress
    port: Port


class FqdnEntry(_Stamped):
    id: NumericId
    record_type: Literal["fqdn"] = "fqdn"
    connection_id: NumericId
    fqdn: Hostname
    dns_record_type: Literal["a", "srv"]
    port: Port | None


class RangeEntry(_Stamped):
    id: NumericId
    cidr_block: CidrBlock
    status: Literal["pending", "added"]
    description: str | None = Field(None, max_length=255)
    # An exported range names its account; a restore gives it to the account restored into.
    user_id: str | None = None


class CredentialEntry(_Strict):
    connection_id: NumericId
    username: Annotated[str, Field(min_length=1, max_length=64)]
    realm: Annotated[str, Field(min_length=1, max_length=128)]
    ha1: Hex32
    ha1b: Hex32
    ha1_sha256: Hex64


class RegistrationEntry(_Stamped):
    connection_id: NumericId
    status: registrations.VirtualStatus
    ip_address: IpAddress | None = None
    port: Port | None = None
    transport: registrations.Transport | None = None
    user_agent: str | None = Field(None, max_length=255)
    expires_at: Stamp | None = None


def _read_only_model(spec: KindSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (type_, value) for name, (type_, value) in spec.read_only.items()}
    return create_model(f"{spec.kind.capitalize()}ReadOnly", __base__=_Lenient, **fields)


_READ_ONLY = {kind: _read_only_model(spec) for kind, spec in KINDS.items()}


async def reset(conn: Conn, user_id: str | None) -> dict[str, int]:
    """Delete every record of the account (of every account when None); API keys stay."""
    return await accounts.wipe(conn, user_id=user_id)


async def export(conn: Conn, user_id: str) -> dict[str, Any]:
    """The account's records as one document, each list oldest first."""
    profiles = await accounts.rows_of(conn, outbound_voice_profile, user_id=user_id)
    conns = await accounts.rows_of(conn, connection, user_id=user_id)
    ranges = await accounts.rows_of(conn, access_ip_range, user_id=user_id)
    regs = await accounts.rows_of(conn, virtual_registration, user_id=user_id)
    return {
        "format": FORMAT,
        "outbound_voice_profiles": [orjson.loads(r["document"]) for r in profiles],
        "connections": [orjson.loads(r["document"]) for r in conns],
        "ips": [ips.record(r) for r in await accounts.rows_of(conn, ip, user_id=user_id)],
        "fqdns": [fqdns.record(r) for r in await accounts.rows_of(conn, fqdn, user_id=user_id)],
        "access_ip_ranges": [
            {k: r[k] for k in ("id", "cidr_block", "status", "description", "created_at", "updated_at")}
            for r in ranges
        ],
        "credentials": [
            {k: r[k] for k in ("connection_id", "username", "realm", "ha1", "ha1b", "ha1_sha256")}
            for r in await accounts.credentials_of(conn, user_id=user_id)
        ],
        "registrations": [{k: r[k] for k in _REGISTRATION_KEYS} for r in regs],
    }


_REGISTRATION_KEYS = (
    "connection_id",
    "status",
    "ip_address",
    "port",
    "transport",
    "user_agent",
    "expires_at",
    "created_at",
    "updated_at",
)


async def restore(conn: Conn, user_id: str, document: Any) -> dict[str, int]:
    """Replace the account's records with the document's; raises TelnyxErrors (422) naming every
    problem, before anything is written. Returns how many records of each kind were written."""
    plan = _Plan.parse(user_id, document)
    # Advisory locks of FQDN names before any row lock, as an FQDN create takes them (store/fqdns.py),
    # in sorted order so that two restores take them in the same order.
    for name, port in sorted(plan.fqdn_keys, key=lambda p: (p[0], p[1] or 0)):
        await store_fqdns.lock_address(conn, name=name, port=port)
    await accounts.wipe(conn, user_id=user_id)
    # What is left belongs to other accounts: anything the document shares with it is a clash.
    raise_all(await plan.clashes(conn))
    for table, rows in plan.rows.items():
        await accounts.insert_rows(conn, table, rows)
    if plan.rows[connection] or plan.rows[ip] or plan.rows[fqdn]:
        await changes.bump(conn, changes.ACL)
    if plan.rows[access_ip_range]:
        await changes.bump(conn, ACCESS_TOPIC)
    return plan.counts()


class _Plan:
    """A document checked on its own, as the rows to insert and the keys that must stay unique."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.errors: list[TelnyxError] = []
        self.rows: dict[sa.Table, list[dict[str, Any]]] = {
            t: []
            for t in (
                outbound_voice_profile,
                connection,
                sip_credential,
                ip,
                fqdn,
                access_ip_range,
                virtual_registration,
            )
        }
        # Unique keys: value -> pointer of the entry that holds it.
        self.ids: dict[str, dict[str, str]] = {
            t: {} for t in ("profile", "connection", "ip", "fqdn", "range")
        }
        self.user_names: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.subdomains: dict[str, str] = {}
        self.addresses: dict[tuple[str, int], str] = {}
        self.fqdn_keys: dict[tuple[str, int | None], str] = {}
        self.kinds: dict[str, Kind] = {}  # connection id -> kind
        self.user_name_of: dict[str, str] = {}  # connection id -> SIP user name (credential, FQDN)
        self.endpoints: dict[str, set[str]] = {}  # connection id -> its IP / FQDN ids

    @classmethod
    def parse(cls, user_id: str, document: Any) -> _Plan:
        plan = cls(user_id)
        if not isinstance(document, dict):
            raise InvalidParameter("The state document must be a JSON object.", pointer="/")
        doc = validate(Document, document)
        if doc.format != FORMAT:
            raise InvalidParameter(
                f"Unknown format {doc.format}; this server reads format {FORMAT}.", pointer="/format"
            )
        total = sum(len(getattr(doc, s)) for s in SECTIONS)
        if total > MAX_RECORDS:
            raise InvalidParameter(f"A document may hold at most {MAX_RECORDS} records.", pointer="/")
        for section in SECTIONS:
            add = getattr(plan, f"_add_{section}")
            for index, entry in enumerate(getattr(doc, section)):
                at = f"/{section}/{index}"
                try:
                    add(entry, at, (section, index))
                except (TelnyxError, TelnyxErrors) as exc:
                    plan.errors.extend(entries_of(exc))
        plan._check_links(doc)
        raise_all(plan.errors)
        return plan

    def _unique(self, seen: dict[Any, str], key: Any, at: str, what: str) -> None:
        if key in seen:
            self.errors.append(DuplicateResource(f"{what} is also at {seen[key]}.", pointer=at))
        else:
            seen[key] = at

    def _add_outbound_voice_profiles(
        self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]
    ) -> None:
        meta, profile = _validate_all(entry, loc, ProfileMeta, OutboundVoiceProfileCreate)
        settings = profile.model_dump(mode="json")
        self._unique(self.ids["profile"], meta.id, f"{at}/id", f"Id {meta.id}")
        record = {"id": meta.id, "record_type": PROFILE_RECORD_TYPE, **settings}
        record.update(created_at=meta.created_at, updated_at=meta.updated_at)
        columns = profile_columns(record)
        self.rows[outbound_voice_profile].append(
            {"id": meta.id, "user_id": self.user_id, "created_at": meta.created_at, **columns}
        )

    def _add_connections(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        if entry.get("record_type") not in BY_RECORD_TYPE:
            raise InvalidParameter(
                "record_type must be credential_connection, fqdn_connection or ip_connection.",
                pointer=f"{at}/record_type",
            )
        spec = BY_RECORD_TYPE[entry["record_type"]]
        views: list[type[BaseModel]] = [ConnectionMeta, spec.settings, _READ_ONLY[spec.kind]]
        if spec.generated_credentials:
            views.append(FqdnUser)
        meta, settings, read_only, *user = _validate_all(entry, loc, *views)
        record = {
            "id": meta.id,
            "record_type": spec.record_type,
            **settings.model_dump(mode="json"),
            **read_only.model_dump(mode="json"),
        }
        if user:
            record["user_name"] = user[0].user_name
        if spec.has_credentials:
            record["password"] = MASK
        record.update(created_at=meta.created_at, updated_at=meta.updated_at)
        self._unique(self.ids["connection"], meta.id, f"{at}/id", f"Id {meta.id}")
        self.kinds[meta.id] = spec.kind
        self.endpoints.setdefault(meta.id, set())
        columns = connection_columns(record, self.user_id, spec)
        if columns["user_name_key"]:
            self.user_name_of[meta.id] = record["user_name"]
            name = columns["user_name"]
            self._unique(self.user_names, columns["user_name_key"], f"{at}/user_name", f"user_name '{name}'")
        if columns["ip_authentication_token"]:
            token_at = f"{at}/outbound/ip_authentication_token"
            self._unique(self.tokens, columns["ip_authentication_token"], token_at, "This token")
        subdomain = (record.get("inbound") or {}).get("sip_subdomain")
        if subdomain:
            sub_at = f"{at}/inbound/sip_subdomain"
            self._unique(self.subdomains, subdomain, sub_at, f"sip_subdomain '{subdomain}'")
        self.rows[connection].append(
            {"id": meta.id, **columns, "created_at": meta.created_at, "updated_at": meta.updated_at}
        )

    def _add_ips(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        data = validate(IpEntry, entry, prefix=loc)
        self._unique(self.ids["ip"], data.id, f"{at}/id", f"Id {data.id}")
        where = f"{data.ip_address} port {data.port}"
        self._unique(self.addresses, (data.ip_address, data.port), f"{at}/ip_address", where)
        if data.connection_id is not None:
            self._attach(data.connection_id, data.id, "ip", f"{at}/connection_id")
        self.rows[ip].append(
            {"user_id": self.user_id, **data.model_dump(exclude={"record_type"})},
        )

    def _add_fqdns(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        data = validate(FqdnEntry, entry, prefix=loc)
        if (data.dns_record_type == "srv") != (data.port is None):
            raise InvalidParameter(
                "An 'a' record needs a port and an 'srv' record takes none.", pointer=f"{at}/port"
            )
        self._unique(self.ids["fqdn"], data.id, f"{at}/id", f"Id {data.id}")
        key = (data.fqdn.lower().removesuffix("."), data.port)
        self._unique(self.fqdn_keys, key, f"{at}/fqdn", f"{data.fqdn} port {data.port}")
        self._attach(data.connection_id, data.id, "fqdn", f"{at}/connection_id")
        self.rows[fqdn].append({"user_id": self.user_id, **data.model_dump(exclude={"record_type"})})

    def _add_access_ip_ranges(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        data = validate(RangeEntry, entry, prefix=loc)
        self._unique(self.ids["range"], data.id, f"{at}/id", f"Id {data.id}")
        self._unique(self.ids.setdefault("cidr", {}), data.cidr_block, f"{at}/cidr_block", data.cidr_block)
        self.rows[access_ip_range].append({**data.model_dump(), "user_id": self.user_id})

    def _add_credentials(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        data = validate(CredentialEntry, entry, prefix=loc)
        owner = data.connection_id
        if self.kinds.get(owner) not in ("credential", "fqdn"):
            raise MissingAssociation(
                f"Connection {owner} is not a credential or FQDN connection of this document.",
                pointer=f"{at}/connection_id",
            )
        self._unique(self.ids.setdefault("credential", {}), owner, f"{at}/connection_id", "A credential")
        if data.username != self.user_name_of.get(owner):
            raise InvalidParameter(
                "username must be the connection's user_name: the digests bind the two.",
                pointer=f"{at}/username",
            )
        self.rows[sip_credential].append(data.model_dump())

    def _add_registrations(self, entry: dict[str, Any], at: str, loc: tuple[str | int, ...]) -> None:
        data = validate(RegistrationEntry, entry, prefix=loc)
        if self.kinds.get(data.connection_id) != "credential":
            raise MissingAssociation(
                f"Connection {data.connection_id} is not a credential connection of this document.",
                pointer=f"{at}/connection_id",
            )
        registered = self.ids.setdefault("registration", {})
        self._unique(registered, data.connection_id, f"{at}/connection_id", "A registration")
        self.rows[virtual_registration].append({**data.model_dump(), "user_id": self.user_id})

    def _attach(self, connection_id: str, endpoint_id: str, kind: str, at: str) -> None:
        if self.kinds.get(connection_id) != kind:
            raise MissingAssociation(
                f"Connection {connection_id} is not an {kind.upper()} connection of this document.",
                pointer=at,
            )
        self.endpoints[connection_id].add(endpoint_id)

    def _check_links(self, doc: Document) -> None:
        """References that need the whole document: profiles, default endpoints, credentials."""
        has_credential = set(self.ids.get("credential", {}))
        for index, entry in enumerate(doc.connections):
            at = f"/connections/{index}"
            cid = entry.get("id")
            if not isinstance(cid, str) or cid not in self.kinds:
                continue  # already reported
            outbound = entry.get("outbound") or {}
            profile = outbound.get("outbound_voice_profile_id") if isinstance(outbound, dict) else None
            if profile is not None and profile not in self.ids["profile"]:
                self.errors.append(
                    MissingAssociation(
                        f"Outbound voice profile {profile} is not in this document.",
                        pointer=f"{at}/outbound/outbound_voice_profile_id",
                    )
                )
            spec = KINDS[self.kinds[cid]]
            inbound = entry.get("inbound") or {}
            for field in spec.default_fields:
                value = inbound.get(field) if isinstance(inbound, dict) else None
                if value is not None and value not in self.endpoints[cid]:
                    self.errors.append(
                        MissingAssociation(
                            f"{field} must be the id of an {spec.endpoint or ''} record of this connection.",
                            pointer=f"{at}/inbound/{field}",
                        )
                    )
            if spec.has_credentials and cid not in has_credential:
                self.errors.append(
                    MissingAssociation(
                        "A credential or FQDN connection needs its SIP digests in `credentials`.",
                        pointer=f"{at}/id",
                    )
                )

    async def clashes(self, conn: Conn) -> list[TelnyxError]:
        """What the document shares with the records left in the database (other accounts')."""
        errors: list[TelnyxError] = []

        def report(found: Iterable[Any], where: Mapping[Any, str], what: Callable[[Any], str]) -> None:
            for key in sorted(found, key=str):
                errors.append(
                    DuplicateResource(f"{what(key)} is already used by another account.", pointer=where[key])
                )

        id_columns = {
            "profile": outbound_voice_profile.c.id,
            "connection": connection.c.id,
            "ip": ip.c.id,
            "fqdn": fqdn.c.id,
            "range": access_ip_range.c.id,
        }
        for kind, column in id_columns.items():
            report(await accounts.taken(conn, column, self.ids[kind]), self.ids[kind], lambda k: f"Id {k}")
        report(
            await accounts.taken(conn, connection.c.user_name_key, self.user_names),
            self.user_names,
            lambda k: f"The user_name '{k}'",
        )
        report(
            await accounts.taken(conn, connection.c.ip_authentication_token, self.tokens),
            self.tokens,
            lambda k: "This ip_authentication_token",
        )
        report(
            await accounts.taken_subdomains(conn, self.subdomains),
            self.subdomains,
            lambda k: f"The sip_subdomain '{k}'",
        )
        report(
            await accounts.taken_addresses(conn, self.addresses),
            self.addresses,
            lambda k: f"{k[0]} port {k[1]}",
        )
        report(
            await accounts.taken_fqdns(conn, self.fqdn_keys),
            self.fqdn_keys,
            lambda k: f"{k[0]} port {k[1]}" if k[1] is not None else f"{k[0]} as an SRV record",
        )
        errors.sort(key=lambda e: _pointer_order(e.pointer or ""))
        return errors

    def counts(self) -> dict[str, int]:
        return {
            "outbound_voice_profiles": len(self.rows[outbound_voice_profile]),
            "connections": len(self.rows[connection]),
            "ips": len(self.rows[ip]),
            "fqdns": len(self.rows[fqdn]),
            "access_ip_ranges": len(self.rows[access_ip_range]),
            "credentials": len(self.rows[sip_credential]),
            "registrations": len(self.rows[virtual_registration]),
        }


def _validate_all(data: Any, loc: tuple[str | int, ...], *models: type[BaseModel]) -> list[Any]:
    """Several views of one entry, every failure of each reported together."""
    out: list[Any] = []
    errors: list[TelnyxError] = []
    for model in models:
        try:
            out.append(validate(model, data, prefix=loc))
        except TelnyxErrors as exc:
            errors.extend(exc.errors)
    raise_all(errors)
    return out


def _pointer_order(pointer: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"/", pointer))
