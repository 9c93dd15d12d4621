"""Access IP ranges: the networks an account's API keys may be used from
(https://developers.telnyx.com/api-reference/ip-ranges/create-new-access-ip-range).

A range is `pending` from creation until the API's access gate has loaded it, then `added` (when is
trunkline's choice: Telnyx names both states but not the move). Once an
account has a loaded range, its keys work only from inside one of its ranges; the gate lives in
`http/gate.py`, these are the records and rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import DuplicateResource, InvalidParameter, ResourceNotFound
from trunkline.resources._base import RecordModel, TelnyxModel, validate
from trunkline.store import access_ip_ranges as store
from trunkline.store import ids
from trunkline.store.db import Conn
from trunkline.store.paging import Page, PageResult

Status = Literal["pending", "added"]


def normalize_cidr(value: str) -> str:
    """The canonical text of a network: compressed, lowercase; a bare address is a /32 or /128."""
    if "%" in value:
        raise ValueError("must not carry an IPv6 zone id")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(
                "must be an IPv4 or IPv6 CIDR block, such as 192.168.1.0/24 or 2001:db8::/48"
            ) from None
        # Refused rather than silently widened: 10.0.0.5/24 may be a typo for a /32.
        raise ValueError(f"has host bits set; the network containing it is {loose}") from None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
        # Clients reach the gate as plain IPv4 (mapped peers are unmapped), so say it in IPv4.
        raise ValueError("is an IPv4-mapped IPv6 network; write it as an IPv4 CIDR block")
    return str(network)


CidrBlock = Annotated[str, Field(max_length=64), AfterValidator(normalize_cidr)]


class AccessIpRangeCreate(TelnyxModel):
    cidr_block: CidrBlock = Field(description="IPv4 or IPv6 network in CIDR notation, e.g. 192.168.1.0/24.")
    description: str | None = Field(None, max_length=255)


class AccessIpRange(RecordModel):
    """Returned bare, without a `data` wrapper, by create and delete
    (https://developers.telnyx.com/api-reference/ip-ranges/delete-access-ip-ranges)."""

    id: str
    cidr_block: str
    status: Status
    user_id: str
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


def record(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "cidr_block": row["cidr_block"],
        "status": row["status"],
        "user_id": row["user_id"],
        "description": row["description"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def create(conn: Conn, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    data = validate(AccessIpRangeCreate, body)
    if await store.find_cidr(conn, user_id=user_id, cidr_block=data.cidr_block) is not None:
        raise DuplicateResource(
            f"{data.cidr_block} is already one of this account's access IP ranges.", pointer="/cidr_block"
        )
    stamp = ids.now()
    values = {
        "id": ids.numeric_id(),
        "user_id": user_id,
        "cidr_block": data.cidr_block,
        "description": data.description,
        "status": "pending",
        "created_at": stamp,
        "updated_at": stamp,
    }
    await store.insert(conn, **values)
    return record(values)


async def delete(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    row = await store.get(conn, user_id=user_id, id=id)
    if row is None:
        raise ResourceNotFound(f"Access IP range {id} not found.")
    if not await store.delete(conn, id=id):
        raise ResourceNotFound(f"Access IP range {id} not found.")
    return record(row)


@dataclass(frozen=True, slots=True)
class Filters:
    """Parsed `filter[cidr_block]…` and `filter[created_at]…`: (operator, value) pairs, all ANDed."""

    cidr: list[tuple[str, str]] = field(default_factory=list)
    created_at: list[tuple[str, str]] = field(default_factory=list)


def filters(cidr: dict[str, str | None], created_at: dict[str, str | None]) -> Filters:
    """Filters from the query's raw values, keyed by operator (`eq` for the bare parameter)."""
    out = Filters()
    for op, value in cidr.items():
        if value is None:
            continue
        if op == "eq":
            # Not a network: it stays as sent and matches nothing, which is the right answer.
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_network(value, strict=False))
        # Stored blocks are lowercase; lowering the value keeps IPv6 matches case-insensitive on
        # PostgreSQL, whose LIKE is case-sensitive (SQLite's already ignores ASCII case).
        out.cidr.append((op, value.lower()))
    for op, value in created_at.items():
        if value is None:
            continue
        name = "filter[created_at]" if op == "eq" else f"filter[created_at][{op}]"
        start, end = _moment(name, value)
        if op == "eq":
            # Equal at the precision given: "2026-11-26T18:40:25Z" matches any millisecond of that second.
            out.created_at.extend([("gte", start), ("lt", end)])
        else:
            out.created_at.append((op, start))
    return out


async def list_(
    conn: Conn, user_id: str, page: Page, where: Filters
) -> tuple[list[dict[str, Any]], PageResult]:
    result = await store.list_(conn, user_id=user_id, page=page, cidr=where.cidr, created_at=where.created_at)
    return [record(r) for r in result.rows], result


async def list_all(conn: Conn, user_id: str) -> list[dict[str, Any]]:
    """Every range of one account, oldest first (the CLI's view, for lock-out recovery)."""
    return [record(r) for r in await store.list_for_user(conn, user_id=user_id)]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the access gate loads: the change counter and every account's ranges."""

    version: int
    ranges: Sequence[RowMapping]


async def version(conn: Conn) -> int:
    return await store.version(conn)


async def snapshot(conn: Conn) -> Snapshot:
    # The counter first: a change committed in between makes the next poll load again, never skip.
    current = await store.version(conn)
    return Snapshot(version=current, ranges=await store.all_ranges(conn))


async def mark_added(conn: Conn, range_ids: Sequence[str]) -> None:
    if range_ids:
        await store.mark_added(conn, ids=range_ids, at=ids.now())


_FRACTION = re.compile(r"[T ]\d{2}:\d{2}:\d{2}[.,]\d")
_SECONDS = re.compile(r"[T ]\d{2}:\d{2}:\d{2}")
_MINUTES = re.compile(r"[T ]\d{2}:\d{2}")


def _moment(name: str, value: str) -> tuple[str, str]:
    """[start, end) of the instant a filter names, in the stored timestamp format."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)  # Telnyx timestamps are UTC
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            f"Invalid '{name}': '{value}' is not an ISO-8601 date-time such as 2026-01-31T12:00:00Z.",
            pointer="/" + name.replace("][", "/").replace("[", "/").rstrip("]"),
            parameter=name,
        ) from None
    if _FRACTION.search(value):
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # stored to the ms
        step = dt.timedelta(milliseconds=1)
    elif _SECONDS.search(value):
        step = dt.timedelta(seconds=1)
    elif _MINUTES.search(value):
        step = dt.timedelta(minutes=1)
    else:
        step = dt.timedelta(days=1)
    start = _stamp(moment)
    try:
        end = _stamp(moment + step)
    except OverflowError:
        end = "9999-12-31T23:59:59.999Z"
    return start, end


def _stamp(moment: dt.datetime) -> str:
    """Fixed-width `YYYY-MM-DDTHH:MM:SS.mmmZ`, the stored format (text order is time order)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
