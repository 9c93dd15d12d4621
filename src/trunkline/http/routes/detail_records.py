"""/v2/detail_records: Detail Record Search over call records (resources/detail_records.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from trunkline.http import envelope
from trunkline.http.deps import Caller, Db, page_of
from trunkline.http.params import FilterText
from trunkline.resources import detail_records
from trunkline.store.paging import Page

router = APIRouter(prefix="/detail_records", tags=["Detail Records"])

Text = FilterText | None
TIME = "ISO-8601 date or time, UTC unless it names an offset (sip-trunking)."


async def sip_trunking_filters(
    date_range: Annotated[
        Text,
        Query(
            alias="filter[date_range]",
            description="On started_at, in UTC by the server clock: "
            + ", ".join(detail_records.DATE_RANGES)
            + ", or last_N_days (the N x 24 hours up to now).",
        ),
    ] = None,
    status: Annotated[
        Text, Query(alias="filter[status]", description="completed, failed, rejected or in-progress.")
    ] = None,
    connection_id: Annotated[Text, Query(alias="filter[connection_id]")] = None,
    cli: Annotated[Text, Query(alias="filter[cli]", description="The calling number, exactly.")] = None,
    cld: Annotated[Text, Query(alias="filter[cld]", description="The called number, exactly.")] = None,
    direction: Annotated[Text, Query(alias="filter[direction]", description="inbound or outbound.")] = None,
    id: Annotated[Text, Query(alias="filter[id]", description="The record (call leg) id.")] = None,
    telnyx_session_id: Annotated[Text, Query(alias="filter[telnyx_session_id]")] = None,
    call_session_id: Annotated[Text, Query(alias="filter[call_session_id]")] = None,
    sip_call_id: Annotated[Text, Query(alias="filter[sip_call_id]")] = None,
    started_at_gte: Annotated[Text, Query(alias="filter[started_at][gte]", description=TIME)] = None,
    started_at_gt: Annotated[Text, Query(alias="filter[started_at][gt]", description=TIME)] = None,
    started_at_lte: Annotated[Text, Query(alias="filter[started_at][lte]", description=TIME)] = None,
    started_at_lt: Annotated[Text, Query(alias="filter[started_at][lt]", description=TIME)] = None,
    finished_at_gte: Annotated[Text, Query(alias="filter[finished_at][gte]", description=TIME)] = None,
    finished_at_gt: Annotated[Text, Query(alias="filter[finished_at][gt]", description=TIME)] = None,
    finished_at_lte: Annotated[Text, Query(alias="filter[finished_at][lte]", description=TIME)] = None,
    finished_at_lt: Annotated[Text, Query(alias="filter[finished_at][lt]", description=TIME)] = None,
    answered_at_gte: Annotated[Text, Query(alias="filter[answered_at][gte]", description=TIME)] = None,
    answered_at_gt: Annotated[Text, Query(alias="filter[answered_at][gt]", description=TIME)] = None,
    answered_at_lte: Annotated[Text, Query(alias="filter[answered_at][lte]", description=TIME)] = None,
    answered_at_lt: Annotated[Text, Query(alias="filter[answered_at][lt]", description=TIME)] = None,
) -> dict[str, str]:
    """The filter values given, by parameter name."""
    given = {
        "filter[date_range]": date_range,
        "filter[status]": status,
        "filter[connection_id]": connection_id,
        "filter[cli]": cli,
        "filter[cld]": cld,
        "filter[direction]": direction,
        "filter[id]": id,
        "filter[telnyx_session_id]": telnyx_session_id,
        "filter[call_session_id]": call_session_id,
        "filter[sip_call_id]": sip_call_id,
        "filter[started_at][gte]": started_at_gte,
        "filter[started_at][gt]": started_at_gt,
        "filter[started_at][lte]": started_at_lte,
        "filter[started_at][lt]": started_at_lt,
        "filter[finished_at][gte]": finished_at_gte,
        "filter[finished_at][gt]": finished_at_gt,
        "filter[finished_at][lte]": finished_at_lte,
        "filter[finished_at][lt]": finished_at_lt,
        "filter[answered_at][gte]": answered_at_gte,
        "filter[answered_at][gt]": answered_at_gt,
        "filter[answered_at][lte]": answered_at_lte,
        "filter[answered_at][lt]": answered_at_lt,
    }
    return {name: value for name, value in given.items() if value is not None}


@router.get(
    "",
    summary="Search detail records",
    responses={200: {"model": envelope.DataPage[detail_records.DetailRecord]}},
)
async def list_detail_records(
    *,
    caller: Caller,
    db: Db,
    request: Request,
    page: Annotated[Page, Depends(page_of(20))],
    filters: Annotated[dict[str, str], Depends(sip_trunking_filters)],
    sort: Annotated[
        list[FilterText] | None,
        Query(
            description="started_at, finished_at or answered_at, '-' first for descending; several"
            " comma-separated or repeated. Default -started_at."
        ),
    ] = None,
    # Required. A dependency's parameters are checked before the route's own, so a request with several
    # mistakes lists the filters' errors first and a missing record type after them.
    record_type: Annotated[
        detail_records.RecordType,
        Query(alias="filter[record_type]", description="Required. sip-trunking: this account's calls."),
    ],
) -> envelope.JsonBytes:
    records, result = await detail_records.search(
        db,
        caller.user_id,
        record_type=record_type,
        filters=filters,
        names=request.query_params.keys(),
        sort=sort,
        page=page,
    )
    return envelope.page(records, result)
