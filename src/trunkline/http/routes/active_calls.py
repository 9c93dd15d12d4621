"""/v2/connections/{connection_id}/active_calls (resources/active_calls.py).

One segment deeper than /v2/connections/{id}, whose `{id}` matches a single segment: the two never
match the same path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from trunkline.http import envelope
from trunkline.http.deps import Caller, Db, page_of
from trunkline.resources import active_calls
from trunkline.store.paging import Page

router = APIRouter(prefix="/connections", tags=["Call Information"])


@router.get(
    "/{connection_id}/active_calls",
    summary="List a connection's active calls",
    responses={200: {"model": envelope.DataPage[active_calls.ActiveCall]}},
)
async def list_active_calls(
    caller: Caller, db: Db, connection_id: str, page: Annotated[Page, Depends(page_of(20))]
) -> envelope.JsonBytes:
    records, result = await active_calls.list_(db, caller.user_id, connection_id, page)
    return envelope.page(records, result)
