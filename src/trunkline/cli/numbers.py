"""`trunkline numbers`: the operator's phone number inventory (docs/numbers.md).

Each number belongs to one account, which then sees it at /v2/phone_numbers, assigns it to one of its
connections and tags it; the SIP edge routes calls to the number to that connection. A number is held
by one account at a time across the whole server.

Exit status: 0 done; 1 nothing changed because of the inventory (a number held already, or not
there); 2 a number or option that is not well-formed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import orjson
import typer

from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.errors import TelnyxError, TelnyxErrors, entries_of
from trunkline.resources import phone_numbers
from trunkline.store import migrate
from trunkline.store.db import Conn, Database

T = TypeVar("T")

app = typer.Typer(
    help="The phone number inventory: which account holds each number (+E.164).", no_args_is_help=True
)
Numbers = Annotated[
    list[str],
    typer.Argument(help="Numbers in E.164, e.g. +13125550100.", metavar="NUMBER...", show_default=False),
]
# The column's width (store/schema.py).
MAX_USER_ID = 64


def _error(message: str, status: int) -> typer.Exit:
    for line in message.splitlines():
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(status)


def _user_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_USER_ID or "\x00" in value:
        raise _error(f"--user-id must be an account's user id of 1 to {MAX_USER_ID} characters", 2)
    return value


def _plural(n: int) -> str:
    return f"{n} number" if n == 1 else f"{n} numbers"


def _refused(exc: TelnyxError | TelnyxErrors, hint: str) -> typer.Exit:
    details = [entry.detail for entry in entries_of(exc)]
    return _error("\n".join([*details, f"Nothing was changed. {hint}"]), 1)


@app.command()
def add(
    numbers: Numbers,
    user_id: Annotated[str, typer.Option("--user-id", help="The account that is to hold the numbers.")],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Add numbers to an account's inventory: all of them, or none when one cannot be added."""
    user = _user_id(user_id)
    assert user is not None
    try:
        parsed = phone_numbers.parse_numbers(numbers)
    except ValueError as exc:
        raise _error(f"{exc}\nNothing was added.", 2) from None
    migrate.upgrade(database_url)
    try:
        added = run_in_transaction(database_url, lambda conn: phone_numbers.add(conn, user, parsed))
    except (TelnyxError, TelnyxErrors) as exc:
        hint = "A number is held by one account at a time: `trunkline numbers remove` frees it."
        raise _refused(exc, hint) from None
    for number in added:
        typer.echo(
            f"added {number['phone_number']}\tid {number['id']}\t{number['country_iso_alpha2']}"
            f" {number['phone_number_type']}"
        )
    typer.echo(f"{_plural(len(added))} added to user {user}", err=True)


@app.command("list")
def list_(
    user_id: Annotated[str | None, typer.Option("--user-id", help="Only this account's numbers.")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object a line: the API's record of the number, with its user_id."
        ),
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """The numbers, by account then number, one a line: number, user id, connection id (- for none),
    id, tags."""
    user = _user_id(user_id)
    require_current(database_url)  # a read: never migrates
    rows = _reading(database_url, lambda conn: phone_numbers.inventory(conn, user))
    try:
        for owner, number in rows:
            if as_json:
                typer.echo(orjson.dumps({"user_id": owner, **number}).decode())
            else:
                tags = ",".join(number["tags"]) or "-"
                connection = number["connection_id"] or "-"
                typer.echo("\t".join((number["phone_number"], owner, connection, number["id"], tags)))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    if not rows:
        typer.echo("no numbers" + (f" in user {user}'s inventory" if user else " in the inventory"), err=True)


@app.command()
def remove(
    numbers: Numbers,
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="Only if this account holds them (a safety check).")
    ] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Remove numbers from the inventory, all of them or none; calls to them are no longer routed."""
    user = _user_id(user_id)
    problems = []
    for number in numbers:
        try:
            phone_numbers.check_e164(number.strip())
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise _error("\n".join([*problems, "Nothing was removed."]), 2)
    migrate.upgrade(database_url)
    wanted = [number.strip() for number in numbers]
    try:
        removed = run_in_transaction(
            database_url, lambda conn: phone_numbers.remove(conn, wanted, user_id=user)
        )
    except (TelnyxError, TelnyxErrors) as exc:
        raise _refused(exc, "See `trunkline numbers list`.") from None
    for owner, gone in removed:
        typer.echo(f"removed {gone['phone_number']}\tuser {owner}\tid {gone['id']}")
    typer.echo(f"{_plural(len(removed))} removed", err=True)


def _reading(database_url: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """`work(conn)` in a read transaction: no write lock held while the output is written."""

    async def go() -> T:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())
