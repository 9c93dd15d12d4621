"""`trunkline keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.errors import ResourceNotFound
from trunkline.resources import api_keys
from trunkline.store import migrate

app = typer.Typer(help="Manage API keys (each belongs to one account, its user id).", no_args_is_help=True)


@app.command()
def create(
    user_id: Annotated[str, typer.Option("--user-id", help="The account the key acts for.")],
    read_only: Annotated[bool, typer.Option("--read-only", help="The key may only read.")] = False,
    description: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create a key. The key is printed once, as the last line; only its digest is stored."""
    migrate.upgrade(database_url)
    new = run_in_transaction(
        database_url,
        lambda conn: api_keys.create(conn, user_id=user_id, read_only=read_only, description=description),
    )
    mode = "read-only" if new.read_only else "read-write"
    typer.echo(f"created {mode} key {new.key_id} for user {new.user_id}; it is shown only now:", err=True)
    typer.echo(new.secret)


@app.command("list")
def list_(
    user_id: Annotated[str | None, typer.Option("--user-id", help="Only this account's keys.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """One key a line: key id, user id, access, created, revoked. Secrets are never shown."""
    require_current(database_url)  # a read: never migrates
    rows = run_in_transaction(database_url, lambda conn: api_keys.list_(conn, user_id=user_id))
    for row in rows:
        access = "read-only" if row["read_only"] else "read-write"
        revoked = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        typer.echo(f"{row['id']}\t{row['user_id']}\t{access}\t{row['created_at']}\t{revoked}")


@app.command()
def revoke(key_id: str, database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Revoke a key by its id; running servers stop accepting it within their key cache time."""
    migrate.upgrade(database_url)
    try:
        run_in_transaction(database_url, lambda conn: api_keys.revoke(conn, key_id))
    except ResourceNotFound as exc:
        typer.echo(f"error: {exc.detail} See 'trunkline keys list'.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")
