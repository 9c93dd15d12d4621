"""`trunkline access-ranges`: list and remove an account's access IP ranges, for lock-out recovery.

An account whose ranges leave out the address it calls from cannot remove them through the API, since
the gate refuses it; the operator does it here, on the database, and every running server stops
enforcing the removed range within TRUNKLINE_ACCESS_GATE_REFRESH_SECONDS.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.errors import ResourceNotFound, TelnyxError, TelnyxErrors
from trunkline.resources import access_ip_ranges
from trunkline.store import migrate

app = typer.Typer(
    help="Manage access IP ranges (the networks an account's API keys work from).", no_args_is_help=True
)
UserId = Annotated[str, typer.Option("--user-id", help="The account whose ranges these are.")]


@app.command("list")
def list_(user_id: UserId, database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """One range a line: range id, CIDR block, status, created, description."""
    require_current(database_url)  # a read: never migrates
    rows = run_in_transaction(database_url, lambda conn: access_ip_ranges.list_all(conn, user_id))
    if not rows:
        typer.echo(f"user {user_id} has no access IP ranges: its keys work from any address", err=True)
    for row in rows:
        fields = [row["id"], row["cidr_block"], row["status"], row["created_at"], row["description"] or ""]
        typer.echo("\t".join(fields))


@app.command()
def add(
    cidr_block: Annotated[str, typer.Argument(help="An IPv4 or IPv6 network, e.g. 203.0.113.0/24.")],
    user_id: UserId,
    description: Annotated[str | None, typer.Option(help="A note to recognise the range by.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Add a range to an account, e.g. the address it now calls from; servers load it within their
    refresh interval."""
    migrate.upgrade(database_url)
    body = {"cidr_block": cidr_block, "description": description}
    try:
        made = run_in_transaction(database_url, lambda conn: access_ip_ranges.create(conn, user_id, body))
    except (TelnyxError, TelnyxErrors) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"added {made['id']} ({made['cidr_block']}) to user {user_id}")


@app.command()
def remove(
    range_id: Annotated[str, typer.Argument(help="The range's id, as `access-ranges list` prints it.")],
    user_id: UserId,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Remove one range of an account; running servers stop enforcing it within their refresh interval."""
    migrate.upgrade(database_url)
    try:
        removed = run_in_transaction(
            database_url, lambda conn: access_ip_ranges.delete(conn, user_id, range_id)
        )
    except ResourceNotFound:
        typer.echo(
            f"error: user {user_id} has no access IP range {range_id}."
            f" See 'trunkline access-ranges list --user-id {user_id}'.",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"removed {removed['id']} ({removed['cidr_block']}) from user {user_id}")
