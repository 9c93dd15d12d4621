"""`trunkline accounts`: per-account limits the SIP edge enforces.

An account's concurrent-call limit caps the calls all of its connections place at once; the next
INVITE is refused with `403 User channel limit exceeded D1`, as Telnyx refuses it
(https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes). Telnyx sets this limit per
account through support, not its API
(https://developers.telnyx.com/docs/voice/sip-trunking/configuration/concurrent-limits), so here the
operator sets it. The edge reads it at every call: a change applies to the next INVITE.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.store import account_limits, migrate

app = typer.Typer(help="Per-account limits enforced by the SIP edge.", no_args_is_help=True)
UserId = Annotated[str, typer.Option("--user-id", help="The account (the user id its API keys act for).")]
# PostgreSQL's INTEGER, the column's type.
MAX_LIMIT = 2**31 - 1
_HINT = "'--concurrent-calls'"


def _parse_limit(value: str) -> int | None:
    if value.strip().lower() == "none":
        return None
    try:
        limit = int(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a whole number nor 'none'", param_hint=_HINT
        ) from None
    if not 0 <= limit <= MAX_LIMIT:
        raise typer.BadParameter(f"{limit} is out of range 0..{MAX_LIMIT}", param_hint=_HINT)
    return limit


@app.command("set-limits")
def set_limits(
    user_id: UserId,
    concurrent_calls: Annotated[
        str,
        typer.Option(
            "--concurrent-calls",
            help="Calls the account's connections may have up at once (0 blocks every call), or 'none'"
            " for no limit.",
        ),
    ],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Set an account's limits; the SIP edge applies them from the next call."""
    limit = _parse_limit(concurrent_calls)
    migrate.upgrade(database_url)
    run_in_transaction(
        database_url, lambda conn: account_limits.set_concurrent_calls(conn, user_id=user_id, limit=limit)
    )
    typer.echo(f"user {user_id}: concurrent calls {_describe(limit)}")


@app.command()
def show(user_id: UserId, database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Print an account's limits ("unlimited" when none is set)."""
    require_current(database_url)  # a read: never migrates
    row = run_in_transaction(database_url, lambda conn: account_limits.get(conn, user_id=user_id))
    typer.echo(f"user {user_id}: concurrent calls {_describe(row['concurrent_calls'] if row else None)}")


def _describe(limit: int | None) -> str:
    return "unlimited" if limit is None else str(limit)
