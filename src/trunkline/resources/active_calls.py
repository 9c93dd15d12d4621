"""A connection's active calls: its call records not finished yet
(https://developers.telnyx.com/api-reference/call-information/list-all-active-calls-for-given-connection).

trunkline has no call control, so `client_state` is always "". `call_duration` counts whole seconds
from the answer to now on the server clock (store/clock.py), 0 while the call rings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import ResourceNotFound
from trunkline.resources import connections
from trunkline.resources._base import RecordModel
from trunkline.store import call_records as store
from trunkline.store import clock
from trunkline.store.db import Conn
from trunkline.store.paging import Page, PageResult


class ActiveCall(RecordModel):
    call_control_id: str
    call_duration: int = Field(description="Seconds since the call was answered; 0 while it rings.")
    call_leg_id: str
    call_session_id: str
    client_state: str = Field(description='Always "": trunkline has no call control.')
    record_type: Literal["call"] = "call"


def record(row: RowMapping | Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    answered = row["answered_at"]
    duration = 0
    if answered is not None:
        elapsed = now - dt.datetime.fromisoformat(answered)
        duration = max(0, int(elapsed.total_seconds()))
    return {
        "call_control_id": row["call_control_id"],
        "call_duration": duration,
        "call_leg_id": row["id"],
        "call_session_id": row["call_session_id"],
        "client_state": "",
        "record_type": "call",
    }


async def list_(
    conn: Conn, user_id: str, connection_id: str, page: Page
) -> tuple[list[dict[str, Any]], PageResult]:
    """One page of the connection's active calls, oldest first. Another account's connection, or none
    at all, is the same 404 as every other connection endpoint gives."""
    if await connections.find(conn, user_id, connection_id) is None:
        raise ResourceNotFound(f"Connection {connection_id} not found.")
    now = clock.now_at(await clock.offset_ms(conn))
    result = await store.active_on_connection(conn, user_id=user_id, connection_id=connection_id, page=page)
    return [record(row, now) for row in result.rows], result
