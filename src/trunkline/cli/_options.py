"""Options shared by every command that touches the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from trunkline.config import DEFAULT_DATABASE_URL
from trunkline.store.db import Database

T = TypeVar("T")

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TRUNKLINE_DATABASE_URL",
        help="sqlite:///path/to/file.db (default ./trunkline.db) or postgresql://user:pass@host/db",
        show_default=False,
    ),
]
DEFAULT_URL = DEFAULT_DATABASE_URL


def run_in_transaction(database_url: str, work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(conn)` in one write transaction on a short-lived connection."""

    async def go() -> T:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())
