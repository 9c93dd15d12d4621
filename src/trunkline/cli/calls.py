"""`trunkline calls list`: the call records the SIP edge wrote, newest first (docs/calls.md).

A read: it never migrates, and says what to run on a database without trunkline's schema
(cli/_schema.py). `--json` prints each record as `GET /v2/detail_records` returns it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar

import orjson
import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl
from trunkline.cli._schema import require_current
from trunkline.resources import detail_records
from trunkline.store import call_records
from trunkline.store.call_records import Bounds, Search
from trunkline.store.db import Conn, Database

T = TypeVar("T")
app = typer.Typer(help="Call records: one per call attempt through the SIP edge.", no_args_is_help=True)
DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
# (heading, detail-record field) of the table, in order.
COLUMNS = (
    ("STARTED", "started_at"),
    ("ACCOUNT", "user_id"),
    ("CONNECTION", "connection"),
    ("DIR", "direction"),
    ("FROM", "cli"),
    ("TO", "cld"),
    ("STATUS", "status"),
    ("SEC", "call_sec"),
    ("COST", "cost"),
    ("SIP", "sip"),
    ("ROUTES", "routes"),
    ("ID", "id"),
)


def _read(database_url: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `work(conn)` in one read transaction on a short-lived connection."""

    async def go() -> T:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _text(value: str | None, option: str) -> str | None:
    if value is not None and "\x00" in value:
        raise typer.BadParameter("must not contain the NUL character", param_hint=f"'{option}'")
    return value


def _cells(record: dict[str, Any]) -> dict[str, str]:
    """A record's table cells: '-' where the record has null."""
    sip = record["sip_response_code"]
    cells = {
        **record,
        "connection": record["connection_name"] or record["connection_id"],
        "sip": " ".join(str(part) for part in (sip, record["telnyx_error_code"]) if part is not None),
        "cost": f"{record['cost']} {record['currency']}" if record["cost"] is not None else None,
        "routes": ", ".join(f"{r['route']} {r['status']}" for r in record.get("routes_tried") or []),
    }
    return {field: "-" if cells[field] in (None, "") else str(cells[field]) for _, field in COLUMNS}


def table(records: Sequence[dict[str, Any]]) -> list[str]:
    """The records as aligned lines under a heading."""
    rows = [_cells(record) for record in records]
    widths = [max([len(heading)] + [len(row[field]) for row in rows]) for heading, field in COLUMNS]
    lines = ["  ".join(heading.ljust(width) for (heading, _), width in zip(COLUMNS, widths, strict=True))]
    for row in rows:
        cells = (row[field].ljust(width) for (_, field), width in zip(COLUMNS, widths, strict=True))
        lines.append("  ".join(cells))
    return [line.rstrip() for line in lines]


@app.command("list")
def list_(
    user_id: Annotated[str | None, typer.Option("--user-id", help="Only this account's calls.")] = None,
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only the calls of this connection (its id).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only calls started at or after this ISO-8601 time, e.g. 2026-01-31T12:00:00Z"
            " (UTC unless it names an offset).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many calls.")
    ] = DEFAULT_LIMIT,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line, as GET /v2/detail_records returns it.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """List call records, newest first: a table, or with --json one detail record a line."""
    _text(user_id, "--user-id")
    _text(connection, "--connection")
    started: list[Bounds] = []
    if since is not None:
        try:
            started.append(Bounds(gte=detail_records.instant(_text(since, "--since") or "", round_up=True)))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--since'") from None
    require_current(database_url)  # a read: never migrates
    search = Search(
        user_id=user_id,
        started_at=started,
        equals=[("connection_id", connection)] if connection is not None else [],
    )
    rows = _read(database_url, lambda conn: call_records.newest(conn, search, limit=limit))
    # The detail record as the API gives it, and what Telnyx's has no field for: an inbound call's
    # routes in the order tried, each with its answer (docs/calls.md).
    records = [
        {
            **detail_records.record(row),
            "routes_tried": orjson.loads(row["routes_tried"]) if row["routes_tried"] else None,
        }
        for row in rows
    ]
    if as_json:
        for record in records:
            typer.echo(orjson.dumps(record).decode())
        return
    if not records:
        typer.echo("no call records match", err=True)
        return
    for line in table(records):
        typer.echo(line)
