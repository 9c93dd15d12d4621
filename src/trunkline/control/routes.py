"""The control API's routes under /_trunkline/ (docs/testing-control.md): outside /v2, so they never
collide with Telnyx's paths; mounted only when TRUNKLINE_CONTROL is on."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from trunkline.control import faults as fault_rules
from trunkline.control.auth import USER_ID_PATTERN, Caller, admin_only
from trunkline.control.journal import Journal, PathFilter
from trunkline.errors import InvalidParameter, ResourceNotFound
from trunkline.http import envelope, json_body
from trunkline.http.openapi import request_body
from trunkline.resources import api_keys, registrations, state
from trunkline.resources._base import validate
from trunkline.store import clock
from trunkline.store.db import Database
from trunkline.store.ids import format_timestamp

PREFIX = "/_trunkline"
TAG = "Trunkline control"

router = APIRouter(prefix=PREFIX, tags=[TAG])


class AccountCreate(BaseModel):
    """The body of `POST /_trunkline/accounts`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: str | None = Field(None, pattern=USER_ID_PATTERN, description="Made up when absent.")
    read_only: bool = False


class StateDocument(BaseModel):
    """An account's records (resources/state.py describes every list)."""

    model_config = ConfigDict(extra="allow")

    format: int = state.FORMAT


async def _body(request: Request) -> Any:
    """The JSON object a control call carries; none is an empty object (http/json_body.py)."""
    return json_body.request_object(await request.body(), request.headers.get("content-type", ""))


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _journal(request: Request) -> Journal:
    journal: Journal = request.app.state.control_journal
    return journal


def _faults(request: Request) -> fault_rules.Faults:
    rules: fault_rules.Faults = request.app.state.control_faults
    return rules


@router.post(
    "/accounts",
    status_code=201,
    summary="Create an account with an API key (admin token only)",
    openapi_extra=request_body(AccountCreate, required=False),
)
async def create_account(request: Request, caller: Caller) -> envelope.JsonBytes:
    admin_only(caller)
    data = validate(AccountCreate, await _body(request))
    user_id = data.user_id or f"acct-{secrets.token_hex(8)}"
    async with _db(request).transaction(write=True) as conn:
        key = await api_keys.create(conn, user_id=user_id, read_only=data.read_only)
    record = {"user_id": key.user_id, "key": key.secret, "key_id": key.key_id, "read_only": key.read_only}
    return envelope.data(record, status=201)


@router.post("/reset", summary="Delete every record, journal entry and fault rule of the account")
async def reset(request: Request, caller: Caller) -> envelope.JsonBytes:
    # The journal and the rules first: when they are in Redis and it does not answer, the 503 comes
    # before any record is deleted.
    requests = await _journal(request).clear(caller.user_id)
    faults = await _faults(request).clear(caller.user_id)
    async with _db(request).transaction(write=True) as conn:
        deleted = await state.reset(conn, caller.user_id)
    deleted["requests"], deleted["faults"] = requests, faults
    if deleted["access_ip_ranges"]:
        await request.app.state.front_door.gate.changed()
    return envelope.data({"deleted": deleted})


@router.get("/state", summary="The account's records as one document")
async def get_state(request: Request, caller: Caller) -> envelope.JsonBytes:
    user_id = caller.account()
    async with _db(request).transaction() as conn:
        document = await state.export(conn, user_id)
    return envelope.data(document)


@router.put(
    "/state",
    summary="Replace the account's records with a document",
    openapi_extra=request_body(StateDocument),
)
async def put_state(request: Request, caller: Caller) -> envelope.JsonBytes:
    user_id = caller.account()
    document = await _body(request)
    async with _db(request).transaction(write=True) as conn:
        restored = await state.restore(conn, user_id, document)
    await request.app.state.front_door.gate.changed()
    return envelope.data({"restored": restored})


@router.post(
    "/faults",
    status_code=201,
    summary="Add a fault rule",
    openapi_extra=request_body(fault_rules.FaultSpec),
)
async def add_fault(request: Request, caller: Caller) -> envelope.JsonBytes:
    user_id = caller.account()
    spec = validate(fault_rules.FaultSpec, await _body(request))
    return envelope.data((await _faults(request).add(user_id, spec)).public(), status=201)


@router.get("/faults", summary="The account's fault rules")
async def list_faults(request: Request, caller: Caller) -> envelope.JsonBytes:
    rules = await _faults(request).list(caller.user_id)
    return envelope.JsonBytes(orjson.dumps({"data": [r.public() for r in rules]}))


@router.delete("/faults", summary="Delete every fault rule of the account")
async def clear_faults(request: Request, caller: Caller) -> envelope.JsonBytes:
    return envelope.data({"deleted": await _faults(request).clear(caller.user_id)})


@router.delete("/faults/{id}", summary="Delete one fault rule")
async def delete_fault(request: Request, caller: Caller, id: str) -> envelope.JsonBytes:
    rule = await _faults(request).remove(caller.user_id, id)
    if rule is None:
        raise ResourceNotFound(f"Fault rule {id} not found.")
    return envelope.data(rule.public())


def _path_filter(path: str | None) -> PathFilter | None:
    if path is None:
        return None
    if "*" not in path:
        return path.__eq__
    try:
        return fault_rules.compile_path(path).match
    except ValueError as exc:
        raise InvalidParameter(f"Invalid 'path': {exc}.", pointer="/path", parameter="path") from None


@router.get("/requests", summary="The account's request journal, newest first")
async def list_requests(
    request: Request,
    caller: Caller,
    method: Annotated[str | None, Query(pattern=r"^[A-Za-z]{1,16}$")] = None,
    path: Annotated[str | None, Query(max_length=512, pattern=r"^/[!-~]*$")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> envelope.JsonBytes:
    entries = await _journal(request).entries(
        caller.user_id, method=method.upper() if method else None, path=_path_filter(path), limit=limit
    )
    return envelope.JsonBytes(orjson.dumps({"data": entries}))


@router.delete("/requests", summary="Clear the account's request journal")
async def clear_requests(request: Request, caller: Caller) -> envelope.JsonBytes:
    return envelope.data({"deleted": await _journal(request).clear(caller.user_id)})


@router.put(
    "/registrations/{id}",
    summary="Set a credential connection's virtual registration",
    openapi_extra=request_body(registrations.VirtualRegistration),
)
async def put_registration(request: Request, caller: Caller, id: str) -> envelope.JsonBytes:
    user_id = caller.account()
    body = await _body(request)
    async with _db(request).transaction(write=True) as conn:
        status = await registrations.put_virtual(conn, user_id, id, body, request.app.state.edge_view)
    return envelope.data(status)


@router.delete("/registrations/{id}", summary="Remove a credential connection's virtual registration")
async def delete_registration(request: Request, caller: Caller, id: str) -> envelope.JsonBytes:
    user_id = caller.account()
    async with _db(request).transaction(write=True) as conn:
        status = await registrations.delete_virtual(conn, user_id, id, request.app.state.edge_view)
    return envelope.data(status)


class ClockSet(BaseModel):
    """The body of `PUT /_trunkline/clock`: exactly one of the three."""

    model_config = ConfigDict(extra="forbid", strict=True)

    now: str | None = Field(
        None, description="The time to move to, ISO-8601 with a zone, e.g. 2026-12-01T23:59:00Z."
    )
    advance_seconds: float | None = Field(
        None, description="Move the clock on (or back, negative) by so much."
    )
    offset_ms: int | None = Field(None, description="The offset from real time itself; 0 is real time.")


async def _clock_document(db: Database) -> dict[str, Any]:
    offset = await clock.offset_ms(db)
    return {"now": format_timestamp(clock.now_at(offset)), "offset_ms": offset}


@router.get("/clock", summary="The server clock the API and the SIP edge go by")
async def get_clock(request: Request, caller: Caller) -> envelope.JsonBytes:
    return envelope.data(await _clock_document(_db(request)))


@router.put(
    "/clock",
    summary="Move the server clock (admin token only): calling windows, daily spend, record times",
    openapi_extra=request_body(ClockSet),
)
async def set_clock(request: Request, caller: Caller) -> envelope.JsonBytes:
    admin_only(caller)
    data = validate(ClockSet, await _body(request))
    given = [name for name in ("now", "advance_seconds", "offset_ms") if getattr(data, name) is not None]
    if len(given) != 1:
        raise InvalidParameter("give exactly one of now, advance_seconds and offset_ms", pointer="/")
    db = _db(request)
    if data.now is not None:
        try:
            target = dt.datetime.fromisoformat(data.now)
        except ValueError:
            raise InvalidParameter(
                "now is not an ISO-8601 time, e.g. 2026-12-01T23:59:00Z", pointer="/now"
            ) from None
        if target.tzinfo is None:
            raise InvalidParameter("now needs a time zone, e.g. 2026-12-01T23:59:00Z", pointer="/now")
        offset = round((target.timestamp() - time.time()) * 1000)
    elif data.advance_seconds is not None:
        offset = await clock.offset_ms(db) + round(data.advance_seconds * 1000)
    else:
        offset = data.offset_ms or 0
    try:
        await clock.set_offset_ms(db, offset)
    except ValueError as exc:
        raise InvalidParameter(str(exc), pointer="/" + given[0]) from None
    return envelope.data(await _clock_document(db))


@router.delete("/clock", summary="Put the server clock back to real time (admin token only)")
async def reset_clock(request: Request, caller: Caller) -> envelope.JsonBytes:
    admin_only(caller)
    await clock.set_offset_ms(_db(request), 0)
    return envelope.data(await _clock_document(_db(request)))
