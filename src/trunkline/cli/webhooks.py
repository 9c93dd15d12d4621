"""`trunkline webhooks`: the server's signing public key, the outbox, and sending an event again
(docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.store import migrate, webhook_outbox
from trunkline.store.db import Conn
from trunkline.webhooks import signing

app = typer.Typer(help="Webhooks: the signing key, the events and their delivery.", no_args_is_help=True)

COLUMNS = ("created_at", "status", "attempts", "event_type", "user_id", "connection_id", "delivered_to", "id")


@app.command("public-key")
def public_key(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Print the public key events are signed with, as TELNYX_PUBLIC_KEY takes it (base64).

    The key pair is made on first use and kept in the database: every instance on it signs alike."""
    migrate.upgrade(database_url)
    typer.echo(run_in_transaction(database_url, signing.server_public_key))


def _row(event: Any) -> dict[str, Any]:
    keys = ("id", "event_type", "status", "attempts", "user_id", "connection_id", "call_leg_id", "url")
    return {
        **{k: event[k] for k in keys},
        "failover_url": event["failover_url"],
        "delivered_to": event["delivered_to"],
        "last_error": event["last_error"],
        "next_attempt_at": event["next_attempt_at"] if event["status"] == webhook_outbox.PENDING else None,
        "created_at": event["created_at"],
    }


@app.command("list")
def list_(
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only this connection's events.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed.", show_default=False)
    ] = None,
    attempts: Annotated[
        bool, typer.Option("--attempts", help="Also each attempt (time, URL, status, latency, error).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """List webhook events, newest first."""
    if status is not None and status not in webhook_outbox.STATUSES:
        raise typer.BadParameter("must be pending, delivered or failed", param_hint="'--status'")
    require_current(database_url)  # a read: never migrates

    async def read(conn: Conn) -> list[dict[str, Any]]:
        rows = await webhook_outbox.listing(conn, connection_id=connection, status=status, limit=limit)
        out = [_row(r) for r in rows]
        if attempts:
            for item in out:
                item["attempts_made"] = [
                    {str(k): a[k] for k in a} for a in await webhook_outbox.attempts_of(conn, item["id"])
                ]
        return out

    events = run_in_transaction(database_url, read)
    if as_json:
        for event in events:
            typer.echo(orjson.dumps(event).decode())
        return
    if not events:
        typer.echo("no webhook events match", err=True)
        return
    cells = [{c: "-" if e[c] in (None, "") else str(e[c]) for c in COLUMNS} for e in events]
    widths = [max([len(c)] + [len(row[c]) for row in cells]) for c in COLUMNS]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(row[c].ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip())
        if attempts:
            event = next(e for e in events if e["id"] == row["id"])
            for a in event["attempts_made"]:
                code = a["status_code"] if a["status_code"] is not None else "-"
                line = f"    #{a['attempt']} {a['attempted_at']} {a['url']} {code} {a['latency_ms']} ms"
                typer.echo(f"{line} {a['error'] or ''}".rstrip())


@app.command("redeliver")
def redeliver(
    event_id: Annotated[str, typer.Argument(help="The event's id (data.id).")],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Send a delivered or failed event again, with the same id, from its primary URL."""
    migrate.upgrade(database_url)
    if not run_in_transaction(database_url, lambda conn: webhook_outbox.redeliver(conn, event_id)):
        typer.echo(f"error: no delivered or failed webhook event {event_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{event_id} queued")
