"""Detail records: Telnyx's Detail Record Search (https://developers.telnyx.com/docs/v2/debugging/overview/)
over this server's call records, `filter[record_type]=sip-trunking`.

The record follows the voice detail record Telnyx documents
(https://developers.telnyx.com/development/webrtc/troubleshooting/detail-records): its identifiers,
numbers, times, durations and price, every value from the call's row; what a record does not have is
null. `status` is trunkline's mapping (store/call_records.py, docs/calls.md). The other record types of
Telnyx's enum answer an empty page: this server has no such usage.

Errors, as the SDK's docstring for `detail_records.list` says: a filter or sort field that sip-trunking
records do not have is a 400; a value that breaks a rule (a time that is not ISO-8601, an unknown
status) a 422, as everywhere else here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import BadRequest, InvalidParameter, TelnyxError, TelnyxErrors
from trunkline.resources._base import RecordModel, raise_all
from trunkline.store import call_records as store
from trunkline.store import clock
from trunkline.store.call_records import Bounds, Search
from trunkline.store.db import Conn
from trunkline.store.paging import Page, PageResult

# `filter[record_type]`, as the SDK's DetailRecordListParams enumerates it (telnyx 4.189.0).
RecordType = Literal[
    "ai-voice-assistant",
    "amd",
    "call-control",
    "conference",
    "conference-participant",
    "embedding",
    "fax",
    "inference",
    "inference-speech-to-text",
    "media_storage",
    "media-streaming",
    "messaging",
    "noise-suppression",
    "recording",
    "sip-trunking",
    "siprec-client",
    "stt",
    "tts",
    "verify",
    "webrtc",
    "wireless",
]
SIP_TRUNKING = "sip-trunking"
# As Telnyx names a WebRTC record `webrtc_detail_record` (the page above); no public example shows
# the record_type of a sip-trunking record.
RECORD_TYPE: Literal["sip_trunking_detail_record"] = "sip_trunking_detail_record"
# The SDK's enum for `filter[date_range]`, besides `last_N_days`.
DATE_RANGES = (
    "yesterday",
    "today",
    "tomorrow",
    "last_week",
    "this_week",
    "next_week",
    "last_month",
    "this_month",
    "next_month",
)
LAST_N_DAYS = re.compile(r"last_(\d{1,5})_days")
DIRECTIONS = ("inbound", "outbound")
OPERATORS = ("gte", "gt", "lte", "lt")
TIME_FIELDS = store.SORTABLE  # started_at, finished_at, answered_at
# Exact-match filters: parameter -> column. `id`, `telnyx_session_id` and `sip_call_id` are the ones
# clients of Telnyx's sip-trunking records look calls up by.
EQUALS = {
    "filter[connection_id]": "connection_id",
    "filter[cli]": "cli",
    "filter[cld]": "cld",
    "filter[direction]": "direction",
    "filter[id]": "id",
    "filter[telnyx_session_id]": "call_session_id",
    "filter[call_session_id]": "call_session_id",
    "filter[sip_call_id]": "sip_call_id",
}
TIME_FILTERS = {f"filter[{name}][{op}]": (name, op) for name in TIME_FIELDS for op in OPERATORS}
FILTERS = frozenset({"filter[record_type]", "filter[date_range]", "filter[status]", *EQUALS, *TIME_FILTERS})
DEFAULT_SORT = (("started_at", True),)


class UnknownFilter(BadRequest):
    """400: a filter field the selected record type does not have."""

    title = "Invalid filter"


class UnknownSort(BadRequest):
    """400: a sort field the selected record type does not have."""

    title = "Invalid sorting value"


class DetailRecord(RecordModel):
    """A sip-trunking detail record: one call attempt through the SIP edge."""

    id: str = Field(description="The record's id; the call leg id.")
    record_type: Literal["sip_trunking_detail_record"] = RECORD_TYPE
    user_id: str
    connection_id: str | None = Field(None, description="The SIP connection that placed or took the call.")
    connection_name: str | None = Field(None, description="Its name now; null once it is deleted.")
    billing_group_id: str | None = Field(None, description="Always null: trunkline has no billing groups.")
    billing_group_name: str | None = None
    direction: str = Field(description="outbound (from the connection) or inbound (to it).")
    cli: str = Field(description="The calling number.")
    cld: str = Field(description="The called number.")
    country_code: str | None = Field(None, description="ISO 3166-1 alpha-2 country of the called number.")
    started_at: str
    answered_at: str | None = None
    finished_at: str | None = None
    call_sec: int | None = Field(None, description="Seconds from answer to hangup.")
    billed_sec: int | None = None
    rate: str | None = Field(None, description="USD per minute, from the rate deck.")
    cost: str | None = None
    currency: str
    payment_method: str | None = Field(None, description="rate-deck when the call was rated, else null.")
    status: Literal["completed", "failed", "rejected", "in-progress"]
    hangup_cause: str | None = None
    hangup_source: str | None = Field(None, description="caller, callee or unknown.")
    sip_response_code: int | None = Field(None, description="The final SIP status the caller got.")
    sip_response_reason: str | None = None
    telnyx_error_code: str | None = Field(None, description="The D-code of a refused call, e.g. D13.")
    call_leg_id: str
    telnyx_leg_id: str
    call_session_id: str
    telnyx_session_id: str
    call_control_id: str
    telnyx_call_control_id: str
    sip_call_id: str
    tags: str | None = None


def record(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """The detail record of one call_record row (with its `connection_name`, store/call_records.py)."""
    return {
        "id": row["id"],
        "record_type": RECORD_TYPE,
        "user_id": row["user_id"],
        "connection_id": row["connection_id"],
        "connection_name": row["connection_name"],
        "billing_group_id": None,
        "billing_group_name": None,
        "direction": row["direction"],
        "cli": row["cli"],
        "cld": row["cld"],
        "country_code": row["destination_country"],
        "started_at": row["started_at"],
        "answered_at": row["answered_at"],
        "finished_at": row["finished_at"],
        "call_sec": row["call_sec"],
        "billed_sec": row["billed_sec"],
        "rate": row["rate"],
        "cost": row["cost"],
        "currency": row["currency"],
        "payment_method": "rate-deck" if row["rate"] is not None else None,
        "status": store.status_of(row),
        "hangup_cause": row["hangup_cause"],
        "hangup_source": row["hangup_source"],
        "sip_response_code": row["sip_status"],
        "sip_response_reason": row["sip_reason"],
        "telnyx_error_code": row["d_code"],
        "call_leg_id": row["id"],
        "telnyx_leg_id": row["id"],
        "call_session_id": row["call_session_id"],
        "telnyx_session_id": row["call_session_id"],
        "call_control_id": row["call_control_id"],
        "telnyx_call_control_id": row["call_control_id"],
        "sip_call_id": row["sip_call_id"],
        "tags": None,
    }


def stamp(moment: dt.datetime) -> str:
    """A UTC datetime in the stored format (store/schema.py), years always four digits."""
    m = moment.astimezone(dt.UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def pointer_of(parameter: str) -> str:
    """`filter[started_at][gte]` -> `/filter/started_at/gte`, as the HTTP layer points at parameters."""
    return "/" + parameter.replace("][", "/").replace("[", "/").rstrip("]")


def _invalid(parameter: str, message: str) -> InvalidParameter:
    return InvalidParameter(
        f"Invalid '{parameter}': {message}.", pointer=pointer_of(parameter), parameter=parameter
    )


def instant(value: str, *, round_up: bool = False) -> str:
    """An ISO-8601 date or time (UTC when it names no offset) as a stored-format timestamp; ValueError
    saying why when it is not one.

    Stored times have milliseconds; a finer bound is rounded down, or up with `round_up` (for `gte`
    and `lt`), so that comparing at milliseconds selects the same records as comparing exactly."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date or time, such as 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        moment = moment.astimezone(dt.UTC)
        if round_up and moment.microsecond % 1000:
            moment += dt.timedelta(microseconds=1000 - moment.microsecond % 1000)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the years 1 to 9999 in UTC") from None
    return stamp(moment)


def date_range(value: str, now: dt.datetime) -> Bounds:
    """`filter[date_range]` on started_at, in UTC. Calendar ranges run from midnight to midnight,
    weeks from Monday (ISO 8601); `last_N_days` is the N x 24 hours up to now."""
    parameter = "filter[date_range]"
    match = LAST_N_DAYS.fullmatch(value)
    if match:
        days = int(match.group(1))
        if days < 1:
            raise _invalid(parameter, "last_N_days needs N of at least 1")
        return Bounds(gte=stamp(now - dt.timedelta(days=days)), lte=stamp(now))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = dt.timedelta(days=1)
    monday = today - today.weekday() * day
    month = today.replace(day=1)
    spans = {
        "yesterday": (today - day, today),
        "today": (today, today + day),
        "tomorrow": (today + day, today + 2 * day),
        "last_week": (monday - 7 * day, monday),
        "this_week": (monday, monday + 7 * day),
        "next_week": (monday + 7 * day, monday + 14 * day),
        "last_month": (_add_months(month, -1), month),
        "this_month": (month, _add_months(month, 1)),
        "next_month": (_add_months(month, 1), _add_months(month, 2)),
    }
    if value not in spans:
        raise _invalid(parameter, f"{value!r} is not one of {', '.join(DATE_RANGES)} or last_N_days")
    start, end = spans[value]
    return Bounds(gte=stamp(start), lt=stamp(end))


def _add_months(first_of_month: dt.datetime, months: int) -> dt.datetime:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return first_of_month.replace(year=index // 12, month=index % 12 + 1)


def parse_sort(values: Sequence[str] | None) -> list[tuple[str, bool]]:
    """`sort` keys (repeated, or comma-separated as the SDK sends a list) as (column, descending)."""
    keys = [part.strip() for value in values or () for part in value.split(",")]
    keys = [key for key in keys if key]
    if not keys:
        return list(DEFAULT_SORT)
    wrong = [key for key in keys if key.removeprefix("-") not in TIME_FIELDS]
    if wrong:
        allowed = ", ".join(f"{name}, -{name}" for name in TIME_FIELDS)
        raise TelnyxErrors(
            UnknownSort(
                f"Cannot sort sip-trunking detail records by '{key}'; sort by one of: {allowed}.",
                pointer="/sort",
                parameter="sort",
            )
            for key in wrong
        )
    return [(key.removeprefix("-"), key.startswith("-")) for key in keys]


def unknown_filters(names: Iterable[str]) -> list[TelnyxError]:
    """A 400 for every `filter[...]` parameter that sip-trunking records have no field for."""
    return [
        UnknownFilter(
            f"sip-trunking detail records have no filter '{name}'. The filters are filter[record_type],"
            " filter[date_range], filter[status], filter[connection_id], filter[cli], filter[cld],"
            " filter[direction], filter[id], filter[telnyx_session_id], filter[call_session_id],"
            " filter[sip_call_id] and filter[started_at|finished_at|answered_at][gte|gt|lte|lt].",
            pointer=pointer_of(name),
            parameter=name,
        )
        for name in sorted(set(names))
        if (name == "filter" or name.startswith("filter[")) and name not in FILTERS
    ]


def parse_search(user_id: str | None, filters: Mapping[str, str], now: dt.datetime) -> Search:
    """The search the filters ask for, or every value error they hold, raised together (422)."""
    errors: list[TelnyxError] = []
    bounds: dict[str, list[Bounds]] = {name: [] for name in TIME_FIELDS}
    equals: list[tuple[str, str]] = []
    status: str | None = None
    for parameter, value in filters.items():
        try:
            if parameter in EQUALS:
                if parameter == "filter[direction]" and value not in DIRECTIONS:
                    raise _invalid(parameter, f"{value!r} is not one of {', '.join(DIRECTIONS)}")
                equals.append((EQUALS[parameter], value))
            elif parameter in TIME_FILTERS:
                name, op = TIME_FILTERS[parameter]
                try:
                    at = instant(value, round_up=op in ("gte", "lt"))
                except ValueError as exc:
                    raise _invalid(parameter, str(exc)) from None
                bounds[name].append(Bounds(**{op: at}))
            elif parameter == "filter[date_range]":
                bounds["started_at"].append(date_range(value, now))
            elif parameter == "filter[status]":
                if value not in store.STATUSES:
                    raise _invalid(parameter, f"{value!r} is not one of {', '.join(store.STATUSES)}")
                status = value
        except InvalidParameter as exc:
            errors.append(exc)
    raise_all(errors)
    return Search(
        user_id=user_id,
        started_at=bounds["started_at"],
        finished_at=bounds["finished_at"],
        answered_at=bounds["answered_at"],
        equals=equals,
        status=status,
    )


async def search(
    conn: Conn,
    user_id: str,
    *,
    record_type: str,
    filters: Mapping[str, str],
    names: Iterable[str],
    sort: Sequence[str] | None,
    page: Page,
) -> tuple[list[dict[str, Any]], PageResult]:
    """One page of the account's detail records of `record_type`.

    `filters` holds the values of the filter parameters given (parameter -> value); `names` every
    query parameter's name, so that one sip-trunking records do not have is refused."""
    if record_type != SIP_TRUNKING:
        # Their fields differ by type (the SDK's docstring); this server records none of them.
        return [], PageResult(rows=[], total=0, page=page)
    refused = unknown_filters(names)
    try:
        order = parse_sort(sort)
    except TelnyxErrors as exc:
        refused += exc.errors
    raise_all(refused)  # fields these records do not have: 400, before any value is looked at
    wanted = parse_search(user_id, filters, clock.now_at(await clock.offset_ms(conn)))
    result = await store.search(conn, wanted, sort=order, page=page)
    return [record(row) for row in result.rows], result
