"""`trunkline db`: schema migrations."""

from __future__ import annotations

import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl
from trunkline.store import migrate

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command()
def upgrade(database_url: DatabaseUrl = DEFAULT_URL, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(database_url, revision)
    typer.echo(f"database at {migrate.redact(database_url)} is at revision {revision}")
