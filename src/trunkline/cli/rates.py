"""`trunkline rates`: the operator's rate deck, one for the whole server (docs/rates.md).

While a deck is loaded the SIP edge applies Telnyx's rate rules: a call to a number that no prefix
matches is refused with `403 No Rates Found TM1`, one whose rate exceeds the outbound voice profile's
`max_destination_rate` with `403 Maximum destination rate limit exceeded D24`
(https://support.telnyx.com/en/articles/4409457-telnyx-sip-response-codes), and calls are costed at
the deck's rates. Without a deck those rules are off.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, TypeVar

import orjson
import typer

from trunkline import rating
from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._schema import require_current
from trunkline.store import migrate, rates
from trunkline.store.db import Conn, Database

T = TypeVar("T")

app = typer.Typer(
    help="The rate deck: USD per minute by number prefix, for the SIP edge's rate rules and call costs.",
    no_args_is_help=True,
)
# Bad lines reported by one import at most: enough to see a pattern, short enough to read.
MAX_PROBLEMS = 20
# A progress line on stderr every so many rates read: a million-rate deck takes a while.
PROGRESS_EVERY = 100_000
RULES_OFF = "rate rules (max_destination_rate, TM1) are off"


def _error(message: str, status: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(status)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _reading(database_url: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `work(conn)` in a read transaction: on SQLite one snapshot, and no write lock held while
    the output is written (a listing piped into a pager would otherwise hold up every writer)."""

    async def go() -> T:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


# ----------------------------------------------------------------------------------------------------
# import


class _Rejected(Exception):
    """The file has bad lines (or no rates): nothing is changed."""

    def __init__(self, problems: list[rating.Problem], *, capped: bool = False, empty: bool = False) -> None:
        self.problems = problems
        self.capped = capped
        self.empty = empty


@dataclass(frozen=True)
class _Imported:
    rates: int
    longest: int
    previous: int | None


async def _stage(conn: Conn, file: IO[bytes], name: str, size: int) -> int:
    """Stage the file's rates (store/rates.py); the longest prefix's length. _Rejected when a line is
    bad, after reading on to report up to MAX_PROBLEMS of them."""
    await rates.stage(conn)
    problems: list[rating.Problem] = []
    batch: list[tuple[int, rating.Rate]] = []
    count = longest = 0
    progress = PROGRESS_EVERY
    capped = False

    async def flush() -> None:
        nonlocal count, longest
        repeats = await rates.stage_rates(conn, batch)
        problems.extend(
            rating.Problem(
                repeat.line,
                f"prefix {repeat.prefix!r} is on line {repeat.first_line} already: keep one rate per prefix",
            )
            for repeat in repeats
        )
        count += len(batch) - len(repeats)
        longest = max(longest, *(len(item.prefix) for _, item in batch))
        batch.clear()

    for item in rating.read_deck(file):
        if isinstance(item, rating.Problem):
            problems.append(item)
        else:
            batch.append((item.line, item.rate))
            if len(batch) == rates.BATCH:
                await flush()
        if len(problems) >= MAX_PROBLEMS:
            capped = True
            break
        if count >= progress:
            done = f" ({file.tell() * 100 // size}%)" if size else ""
            typer.echo(f"{name}: {count:,} rates read{done}", err=True)
            progress += PROGRESS_EVERY
    if batch and not capped:
        await flush()
    if problems:
        problems.sort(key=lambda problem: problem.line)
        raise _Rejected(problems[:MAX_PROBLEMS], capped=capped or len(problems) > MAX_PROBLEMS)
    if count == 0:
        raise _Rejected([], empty=True)
    return longest


def _import(database_url: str, file: IO[bytes], name: str, size: int) -> _Imported:
    async def go() -> _Imported:
        db = Database(database_url)
        try:
            if db.dialect == "sqlite":
                # Staged in the connection's temporary database, which takes no lock on the database
                # file: API processes and the edge go on writing while a long file is read, and wait
                # only for the swap.
                async with db.transaction() as conn:
                    longest = await _stage(conn, file, name, size)
                async with db.transaction(write=True) as conn:
                    change = await rates.replace_from_stage(conn, source=Path(name).name)
            else:
                # PostgreSQL's staging table lasts one transaction. The deck is locked only by the swap
                # at its end, and readers never wait for it.
                async with db.transaction(write=True) as conn:
                    longest = await _stage(conn, file, name, size)
                    change = await rates.replace_from_stage(conn, source=Path(name).name)
        finally:
            await db.dispose()
        return _Imported(rates=change.rates, longest=longest, previous=change.previous)

    return asyncio.run(go())


def _report(name: str, rejected: _Rejected) -> None:
    if rejected.empty:
        typer.echo(
            f"error: {name}: there are no rates below the header: a deck needs at least one. To turn"
            " rate rules off, run `trunkline rates clear`. Nothing was changed.",
            err=True,
        )
        return
    for problem in rejected.problems:
        typer.echo(f"error: {name} line {problem.line}: {problem.message}", err=True)
    more = f" (the first {MAX_PROBLEMS}; there may be more)" if rejected.capped else ""
    typer.echo(
        f"error: {name}: {_count(len(rejected.problems), 'bad line')}{more}, so nothing was imported"
        " and the deck in use is unchanged; correct the file and import it again.",
        err=True,
    )


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with the header prefix,rate,description (description optional), UTF-8.",
            metavar="FILE.csv",
            show_default=False,
        ),
    ],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Replace the whole rate deck with the rates of a CSV file, in one transaction.

    Any bad line changes nothing: every bad line (up to 20) is reported and the exit status is 2.
    """
    name = str(file)
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise _error(f"cannot read {name}: {exc.strerror or exc}", 2) from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        migrate.upgrade(database_url)
        try:
            done = _import(database_url, handle, name, size)
        except _Rejected as rejected:
            _report(name, rejected)
            raise typer.Exit(2) from None
    before = (
        "no deck was loaded before"
        if done.previous is None
        else f"the previous deck had {_count(done.previous, 'rate')}"
    )
    typer.echo(
        f"imported {_count(done.rates, 'rate')} from {name}"
        f" (longest prefix {_count(done.longest, 'digit')}); {before}"
    )


# ----------------------------------------------------------------------------------------------------
# clear, list, lookup


@app.command()
def clear(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Remove the rate deck: the SIP edge stops applying rate rules (max_destination_rate, TM1)."""
    migrate.upgrade(database_url)
    previous = run_in_transaction(database_url, rates.clear_deck)
    if previous is None:
        typer.echo(f"no rate deck was loaded: {RULES_OFF}")
    else:
        typer.echo(f"removed the rate deck ({_count(previous, 'rate')}): {RULES_OFF}")


class _Replaced(Exception):
    """The deck was replaced while it was being listed."""


@app.command("list")
def list_(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='One JSON object a line: {"prefix", "rate", "description"}.'),
    ] = False,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="Only the rates whose prefix starts with these digits, e.g. 44."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many rates.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """The deck in prefix order, one rate a line: prefix, rate (USD per minute), description."""
    wanted = None
    if prefix is not None:
        try:
            wanted = rating.parse_prefix(prefix.strip().removeprefix("+"))
        except ValueError as exc:
            raise _error(f"--prefix: {exc}", 2) from None
    require_current(database_url)  # a read: never migrates

    async def work(conn: Conn) -> None:
        info = await rates.deck_info(conn)
        if info is None:
            typer.echo(f"no rate deck loaded: {RULES_OFF}", err=True)
            return
        source = f" from {info.source}" if info.source else ""
        typer.echo(f"rate deck: {_count(info.rates, 'rate')}{source}, imported {info.imported_at}", err=True)
        shown = 0
        async for stamp, item in rates.iter_rates(conn, prefix=wanted, limit=limit):
            if stamp != info.imported_at:
                raise _Replaced
            if as_json:
                line = orjson.dumps(item._asdict()).decode()
            else:
                line = "\t".join((item.prefix, item.rate, item.description or ""))
            typer.echo(line)
            shown += 1
        after = await rates.deck_info(conn)
        if after is None or after.imported_at != info.imported_at:
            raise _Replaced
        if not shown and wanted is not None:
            typer.echo(f"no rate in the deck has a prefix starting with {wanted}", err=True)

    try:
        _reading(database_url, work)
    except _Replaced:
        raise _error(
            "the rate deck was replaced or removed while it was being listed; run the command again", 1
        ) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining again when it
        # flushes stdout at exit (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None


@app.command()
def lookup(
    number: Annotated[
        str,
        typer.Argument(
            help="The number to rate, as +E.164 or its digits, e.g. +442071838750.", metavar="NUMBER"
        ),
    ],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """The rate of a number: the deck's longest prefix that matches it. Exit status 1 when none does."""
    try:
        digits = rating.parse_number(number)
    except ValueError as exc:
        raise _error(str(exc), 2) from None
    require_current(database_url)  # a read: never migrates

    async def work(conn: Conn) -> tuple[rates.DeckInfo | None, rating.Rate | None]:
        return await rates.deck_info(conn), await rates.lookup(conn, digits)

    info, found = _reading(database_url, work)
    if info is None:
        typer.echo(f"no rate deck loaded: {RULES_OFF}, so calls to +{digits} are not rated")
        raise typer.Exit(1)
    if found is None:
        typer.echo(f"no rate for +{digits}: calls to it are refused with 403 No Rates Found TM1")
        raise typer.Exit(1)
    note = f" ({found.description})" if found.description else ""
    typer.echo(f"+{digits}: prefix {found.prefix}, {found.rate} USD/min{note}")
