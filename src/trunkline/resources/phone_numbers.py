"""Phone numbers: the operator's inventory (`trunkline numbers`) and Telnyx's phone-number resource over
it, the subset docs/numbers.md describes
(https://developers.telnyx.com/api-reference/phone-number-configurations/list-phone-numbers).

The operator adds numbers to an account; the account lists them, assigns them to its connections,
tags them and releases them through the API. A record is its row (id, number, connection, times), the
name of its connection read from the connection itself, and the stored document: the fields set when
the number was added (status, type, country, purchase time) and those PATCH sets. `connection_id` is
never kept in the document: deleting a connection sets the column to NULL, and a document would not
know.

Locks (store/locks.py): PATCH and DELETE lock the number's row first; a PATCH that moves the number to
another connection then takes REFERENCE on that connection, child before parent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
import phonenumbers
from pydantic import AfterValidator, Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import (
    BadRequest,
    DuplicateResource,
    InvalidParameter,
    InvalidSort,
    MissingAssociation,
    ResourceNotFound,
    TelnyxError,
    TelnyxErrors,
)
from trunkline.resources._base import RecordModel, TelnyxModel, no_nul, raise_all, validate
from trunkline.store import connections as store_connections
from trunkline.store import ids
from trunkline.store import phone_numbers as store
from trunkline.store.db import Conn
from trunkline.store.locks import Lock
from trunkline.store.paging import Page, PageResult
from trunkline.store.phone_numbers import Search

RECORD_TYPE = "phone_number"
EXAMPLE = "+13125550100"
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

# libphonenumber's types (https://github.com/google/libphonenumber, PhoneNumberType) as Telnyx's
# `phone_number_type`. A US or Canadian geographic number is FIXED_LINE_OR_MOBILE there and `local` at
# Telnyx; the non-geographic kinds Telnyx has no name for (VoIP, personal, UAN, premium rate, pager,
# voicemail) are `national`.
_NUMBER_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "local",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "local",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
}
NUMBER_TYPES = ("local", "national", "toll_free", "mobile", "shared_cost")  # filter[number_type][eq]
# `filter[status]`, as the SDK's PhoneNumberListParams enumerates it (telnyx 4.189.0).
STATUSES = (
    "purchase-pending",
    "purchase-failed",
    "port-pending",
    "active",
    "deleted",
    "port-failed",
    "emergency-only",
    "ported-out",
    "port-out-pending",
)
# Keys of a record that come from the row or a join, never from the stored document.
_ROW_KEYS = frozenset(
    {"id", "record_type", "phone_number", "connection_id", "connection_name", "created_at", "updated_at"}
)


# ----------------------------------------------------------------------------------------------------
# Numbers as the operator gives them


@dataclass(frozen=True)
class Parsed:
    e164: str
    country: str  # ISO 3166-1 alpha-2
    number_type: str  # Telnyx's phone_number_type


def check_e164(text: str) -> str:
    """`text` if it is written as +E.164 (a `+`, then 2 to 15 digits); ValueError saying how, else."""
    if _E164.fullmatch(text):
        return text
    if not text.startswith("+"):
        raise ValueError(f"{text!r} has no leading '+': give each number in E.164, e.g. {EXAMPLE}")
    raise ValueError(
        f"{text!r} is not in E.164: write '+' and the country code and digits only, without spaces or"
        f" punctuation, e.g. {EXAMPLE}"
    )


def parse_number(text: str) -> Parsed:
    """A number to add: +E.164 that libphonenumber calls valid, in one country; ValueError saying why
    not otherwise."""
    check_e164(text)
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text} is not a phone number: {text[1:4]}... begins no country code") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            f"{text} is not a valid phone number (libphonenumber knows no such number in its country):"
            " check the country code and the digits"
        )
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 != text:
        raise ValueError(f"{text} is not in E.164, which has no national prefix: did you mean {e164}?")
    country = phonenumbers.region_code_for_number(parsed)
    if not country or not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(
            f"{text} is a non-geographic number (+{parsed.country_code}), of no country: trunkline keeps"
            " numbers of a country, as Telnyx's country_iso_alpha2 needs"
        )
    number_type = _NUMBER_TYPES.get(phonenumbers.number_type(parsed), "national")
    return Parsed(e164=e164, country=country, number_type=number_type)


def parse_numbers(texts: Iterable[str]) -> list[Parsed]:
    """Every number of a command line, or ValueError listing every problem (one a line)."""
    parsed: list[Parsed] = []
    problems: list[str] = []
    seen: set[str] = set()
    for text in texts:
        try:
            number = parse_number(text.strip())
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if number.e164 in seen:
            problems.append(f"{number.e164} is given twice: give each number once")
            continue
        seen.add(number.e164)
        parsed.append(number)
    if problems:
        raise ValueError("\n".join(problems))
    return parsed


# ----------------------------------------------------------------------------------------------------
# Models


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID, such as 86f58db9-0fe3-4adc-9d1f-46e66e6e9323") from None


def _address_id(value: str) -> str:
    """Telnyx's address ids are numeric (the Addresses API) and a UUID in the PATCH example: either."""
    if ids.is_numeric_id(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(
            "must be an address id: up to 20 digits, such as 1293384261075731499, or a UUID"
        ) from None


Text = Annotated[str, Field(max_length=255), AfterValidator(no_nul)]
Tag = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(no_nul)]
Uuid = Annotated[str, AfterValidator(_uuid)]
AddressId = Annotated[str, AfterValidator(_address_id)]


class PhoneNumberUpdate(TelnyxModel):
    """PATCH body: the fields of Telnyx's PhoneNumberUpdateParams. Absent fields keep their value;
    null clears a nullable one."""

    connection_id: Annotated[str, AfterValidator(no_nul)] | None = Field(
        None, description="A connection of this account to route the number's calls to; null unassigns."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=100, description="Replaces the number's tags.")
    customer_reference: Text | None = Field(None, description="A customer reference string.")
    billing_group_id: Uuid | None = Field(None, description="Stored and returned; bills nothing here.")
    address_id: AddressId | None = Field(None, description="Stored and returned.")
    external_pin: Text | None = Field(None, description="Stored and returned.")
    hd_voice_enabled: bool = Field(False, description="Stored and returned.")


class PhoneNumber(RecordModel):
    id: str
    record_type: Literal["phone_number"] = "phone_number"
    phone_number: str = Field(description="+E.164.")
    status: str
    phone_number_type: str
    country_iso_alpha2: str
    tags: list[str]
    connection_id: str | None = None
    connection_name: str | None = None
    customer_reference: str | None = None
    billing_group_id: str | None = None
    address_id: str | None = None
    external_pin: str | None = None
    hd_voice_enabled: bool
    deletion_lock_enabled: bool
    purchased_at: str = Field(description="When the operator added the number.")
    activated_at: str | None = Field(None, description="When the number became active: when it was added.")
    created_at: str
    updated_at: str


def initial_document(number: Parsed, stamp: str) -> dict[str, Any]:
    """What a number's record holds beyond its row, as `trunkline numbers add` stores it."""
    return {
        "status": "active",  # it routes from the moment it is added
        "phone_number_type": number.number_type,
        "country_iso_alpha2": number.country,
        "tags": [],
        "customer_reference": None,
        "billing_group_id": None,
        "address_id": None,
        "external_pin": None,
        "hd_voice_enabled": False,
        "deletion_lock_enabled": False,
        "purchased_at": stamp,
        "activated_at": stamp,
    }


def record(row: RowMapping | Mapping[str, Any], connection_name: str | None) -> dict[str, Any]:
    document = orjson.loads(row["document"])
    return {
        "id": row["id"],
        "record_type": RECORD_TYPE,
        "phone_number": row["phone_number"],
        **{key: value for key, value in document.items() if key not in _ROW_KEYS},
        "connection_id": row["connection_id"],
        "connection_name": connection_name,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# ----------------------------------------------------------------------------------------------------
# The API


class UnknownFilter(BadRequest):
    """400: a filter Telnyx's phone numbers do not have."""

    title = "Invalid filter"


class UnsupportedFilter(BadRequest):
    """400: a filter of Telnyx's that this server does not implement (docs/numbers.md)."""

    title = "Filter not supported"


VOICE_NAME = "filter[voice.connection_name]"
FILTERS = (
    "filter[phone_number]",
    "filter[connection_id]",
    "filter[tag]",
    "filter[without_tags]",
    "filter[status]",
    "filter[country_iso_alpha2]",
    "filter[number_type][eq]",
    "filter[customer_reference]",
    "filter[billing_group_id]",
    f"{VOICE_NAME}[eq]",
    f"{VOICE_NAME}[contains]",
    f"{VOICE_NAME}[starts_with]",
    f"{VOICE_NAME}[ends_with]",
)
# Telnyx's other filters (the SDK's PhoneNumberListParams), and why this server has nothing to match.
NOT_SUPPORTED = {
    "filter[emergency_address_id]": "numbers here have no emergency address",
    "filter[source]": "numbers here are added by the operator, neither purchased nor ported",
    "filter[voice.usage_payment_method]": "numbers here have no voice settings",
}
_FILTER_LIST = ", ".join(FILTERS)


def _pointer(parameter: str) -> str:
    return "/" + parameter.replace("][", "/").replace("[", "/").rstrip("]")


def _invalid(parameter: str, message: str) -> InvalidParameter:
    return InvalidParameter(
        f"Invalid '{parameter}': {message}.", pointer=_pointer(parameter), parameter=parameter
    )


def filter_name_errors(names: Iterable[str]) -> list[TelnyxError]:
    """A 400 for every `filter...` parameter this list does not take, saying which it does take."""
    errors: list[TelnyxError] = []
    for name in sorted(set(names)):
        if name in FILTERS or not (name == "filter" or name.startswith("filter[")):
            continue
        base = name if name in NOT_SUPPORTED else name.split("]", 1)[0] + "]"
        if base in NOT_SUPPORTED:
            errors.append(
                UnsupportedFilter(
                    f"'{name}' is a Telnyx filter this server does not support: {NOT_SUPPORTED[base]}."
                    f" The supported filters are {_FILTER_LIST}.",
                    pointer=_pointer(name),
                    parameter=name,
                )
            )
        else:
            errors.append(
                UnknownFilter(
                    f"Phone numbers have no filter '{name}'. The filters are {_FILTER_LIST}.",
                    pointer=_pointer(name),
                    parameter=name,
                )
            )
    return errors


def parse_search(filters: Mapping[str, str | Sequence[str]]) -> Search:
    """The search the filter values ask for, or every value error they hold, raised together (422)."""
    errors: list[TelnyxError] = []
    values: dict[str, Any] = {}

    def text(parameter: str) -> str | None:
        value = filters.get(parameter)
        return value if isinstance(value, str) else None

    digits = text("filter[phone_number]")
    if digits is not None:
        if not digits.isascii() or not digits.isdigit():
            errors.append(
                _invalid(
                    "filter[phone_number]",
                    f"{digits!r} is not digits: give three or more digits of the number, without '+' or"
                    " punctuation, e.g. 312555 (Telnyx matches them anywhere in the number)",
                )
            )
        elif len(digits) < 3:
            errors.append(_invalid("filter[phone_number]", "give at least three digits"))
        else:
            values["phone_number_digits"] = digits
    status = text("filter[status]")
    if status is not None:
        if status not in STATUSES:
            errors.append(_invalid("filter[status]", f"{status!r} is not one of {', '.join(STATUSES)}"))
        values["status"] = status
    number_type = text("filter[number_type][eq]")
    if number_type is not None:
        if number_type not in NUMBER_TYPES:
            message = f"{number_type!r} is not one of {', '.join(NUMBER_TYPES)}"
            errors.append(_invalid("filter[number_type][eq]", message))
        values["number_type"] = number_type
    countries = filters.get("filter[country_iso_alpha2]")
    if countries is not None:
        # One value, several comma-separated (as the SDK sends a list) or the parameter repeated.
        items = [countries] if isinstance(countries, str) else list(countries)
        codes = [part.strip() for item in items for part in item.split(",") if part.strip()]
        wrong = [code for code in codes if not re.fullmatch(r"[A-Za-z]{2}", code)]
        if wrong or not codes:
            message = f"{', '.join(map(repr, wrong or items))} is not an ISO 3166-1 alpha-2 code, such as US"
            errors.append(_invalid("filter[country_iso_alpha2]", message))
        values["countries"] = tuple(code.upper() for code in codes)
    billing_group = text("filter[billing_group_id]")
    if billing_group == "null":
        values["billing_group_null"] = True
    elif billing_group is not None:
        try:
            values["billing_group_id"] = _uuid(billing_group)
        except ValueError:
            values["billing_group_id"] = billing_group  # stored ids are UUIDs: it matches none
    for op in ("contains", "starts_with", "ends_with"):
        parameter = f"{VOICE_NAME}[{op}]"
        value = text(parameter)
        if value is not None:
            if len(value) < 3:
                errors.append(_invalid(parameter, "give at least three characters"))
            values[f"connection_name_{op}"] = value
    for parameter, key in (
        ("filter[connection_id]", "connection_id"),
        ("filter[tag]", "tag"),
        ("filter[customer_reference]", "customer_reference"),
        (f"{VOICE_NAME}[eq]", "connection_name_eq"),
    ):
        value = text(parameter)
        if value is not None:
            values[key] = value
    # "When set to 'true', filters for phone numbers that do not have any tags applied. All other
    # values are ignored." (the SDK's docstring)
    values["without_tags"] = text("filter[without_tags]") == "true"
    raise_all(errors)
    return Search(**values)


def parse_sort(sort: str | None) -> str | None:
    if sort is None or sort in store.SORTS:
        return sort
    if sort == "usage_payment_method":
        detail = "Sorting by usage_payment_method is not supported: numbers here have no voice settings."
    else:
        detail = f"Cannot sort phone numbers by {sort!r}."
    raise InvalidSort(
        f"{detail} Sort by one of: {', '.join(store.SORTS)}.", pointer="/sort", parameter="sort"
    )


async def list_(
    conn: Conn,
    user_id: str,
    page: Page,
    *,
    filters: Mapping[str, str | Sequence[str]],
    names: Iterable[str],
    sort: str | None,
) -> tuple[list[dict[str, Any]], PageResult]:
    """One page of the account's numbers. `filters` holds the filter values given (parameter ->
    value); `names` every query parameter's name, so that a filter this list lacks is refused."""
    refused = filter_name_errors(names)
    try:
        order = parse_sort(sort)
    except TelnyxError as exc:
        refused.append(exc)
    raise_all(refused)
    search = parse_search(filters)
    result = await store.list_(conn, user_id=user_id, page=page, search=search, sort=order)
    return [record(row, row["connection_name"]) for row in result.rows], result


async def get(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    # The hot path: a statement built once (store/phone_numbers.py, `get_record`).
    row = await store.get_record(conn, user_id=user_id, id=id)
    if row is None:
        raise _not_found(id)
    return record(row, row["connection_name"])


async def update(conn: Conn, user_id: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await store.locked(conn, user_id=user_id, id=id, lock=Lock.UPDATE)
    if row is None:
        raise _not_found(id)
    patch = validate(PhoneNumberUpdate, body).model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    if "connection_id" in patch:
        target = patch.pop("connection_id")
        if target != row["connection_id"]:
            if target is not None:
                await _check_connection(conn, user_id, target)
            values["connection_id"] = target
        # Unchanged: the row still names it, so it exists (its DELETE would have to lock this row to
        # clear the reference): no lock is taken, and none is waited for while this row is held.
    document = {**orjson.loads(row["document"]), **patch}
    values.update(document=orjson.dumps(document).decode(), updated_at=ids.now())
    await store.update(conn, id=id, **values)
    updated = {**dict(row), **values}
    return record(updated, await store.connection_name(conn, connection_id=updated["connection_id"]))


async def delete(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    """Release a number: it leaves the account's inventory (the operator may add it again)."""
    row = await store.locked(conn, user_id=user_id, id=id, lock=Lock.DELETE)
    if row is None:
        raise _not_found(id)
    name = await store.connection_name(conn, connection_id=row["connection_id"])
    if not await store.delete(conn, id=id):
        raise _not_found(id)
    return record(row, name)


async def _check_connection(conn: Conn, user_id: str, connection_id: str) -> None:
    """A number may be assigned to a connection of any kind of its own account; REFERENCE keeps the
    connection from being deleted before this transaction commits."""
    found = await store_connections.get(conn, user_id=user_id, id=connection_id, lock=Lock.REFERENCE)
    if found is None:
        hint = " Send null to unassign the number." if connection_id == "" else ""
        raise MissingAssociation(
            f"Connection '{connection_id}' does not exist.{hint}", pointer="/connection_id"
        )


def _not_found(id: str) -> ResourceNotFound:
    return ResourceNotFound(f"Phone number {id} not found.")


# ----------------------------------------------------------------------------------------------------
# The operator's inventory (`trunkline numbers`)


async def add(conn: Conn, user_id: str, numbers: Sequence[Parsed]) -> list[dict[str, Any]]:
    """Add the numbers to an account, all or none. A number another account holds is refused without
    naming that account."""
    held = await store.find_numbers(conn, numbers=[n.e164 for n in numbers])
    errors: list[TelnyxError] = []
    for row in sorted(held, key=lambda r: r["phone_number"]):
        where = f"user {user_id}'s inventory" if row["user_id"] == user_id else "another account's inventory"
        errors.append(DuplicateResource(f"{row['phone_number']} is already in {where}.", pointer=None))
    raise_all(errors)
    stamp = ids.now()
    rows = [
        {
            "id": ids.numeric_id(),
            "user_id": user_id,
            "phone_number": number.e164,
            "connection_id": None,
            "document": orjson.dumps(initial_document(number, stamp)).decode(),
            "created_at": stamp,
            "updated_at": stamp,
        }
        for number in numbers
    ]
    await store.insert(conn, rows)
    return [record(row, None) for row in rows]


async def remove(
    conn: Conn, numbers: Sequence[str], *, user_id: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Remove the numbers (of `user_id`'s inventory, when given), all or none: (user id, record)."""
    numbers = list(dict.fromkeys(numbers))
    rows = await store.find_numbers(conn, numbers=numbers, lock=Lock.DELETE)
    by_number = {row["phone_number"]: row for row in rows}
    errors: list[TelnyxError] = []
    for number in numbers:
        row = by_number.get(number)
        if row is None:
            errors.append(ResourceNotFound(f"{number} is not in the inventory.", pointer=None))
        elif user_id is not None and row["user_id"] != user_id:
            errors.append(ResourceNotFound(f"{number} is not in user {user_id}'s inventory.", pointer=None))
    raise_all(errors)
    removed = []
    for number in numbers:
        row = by_number[number]
        name = await store.connection_name(conn, connection_id=row["connection_id"])
        if not await store.delete(conn, id=row["id"]):
            raise TelnyxErrors([ResourceNotFound(f"{number} is not in the inventory.", pointer=None)])
        removed.append((row["user_id"], record(row, name)))
    return removed


async def inventory(conn: Conn, user_id: str | None) -> list[tuple[str, dict[str, Any]]]:
    """Every number (of one account, when given): (user id, record), by account, then number."""
    rows = await store.inventory(conn, user_id=user_id)
    return [(row["user_id"], record(row, row["connection_name"])) for row in rows]
