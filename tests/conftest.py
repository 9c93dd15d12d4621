"""Fixtures shared by every test: a database per backend, a live server, accounts with keys, clients.

Every test that uses `backend` runs twice, on SQLite and on PostgreSQL. Tests isolate themselves by
account: each `account` fixture is a fresh user id with its own key, on a server shared by the session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import telnyx

from tests.server import LiveServer
from tests.services import postgres_database
from trunkline.config import Settings
from trunkline.resources import api_keys
from trunkline.store import migrate
from trunkline.store.db import Database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new database of this backend with every migration applied; PostgreSQL's is dropped after."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'trunkline.db'}"
        migrate.upgrade(url)
        yield url
        return
    with postgres_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(backend, tmp_path_factory) as url:
        yield url


def test_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url, "access_log": False, "key_cache_seconds": 0.5}
    # As `serve --ephemeral`: the tests' webhook receivers listen on loopback (docs/webhooks.md).
    values["webhook_allow_private"] = True
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[LiveServer]:
    live = LiveServer(test_settings(database_url)).start()
    yield live
    live.stop()


def mint_key(database_url: str, user_id: str, *, read_only: bool = False) -> str:
    async def go() -> str:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                return (await api_keys.create(conn, user_id=user_id, read_only=read_only)).secret
        finally:
            await db.dispose()

    return asyncio.run(go())


@dataclass
class Account:
    """One tenant: its user id, its key, the official SDK and a raw HTTP client bound to it."""

    user_id: str
    key: str
    client: telnyx.Telnyx
    http: httpx.Client


def _account(server: LiveServer, database_url: str, *, read_only: bool = False) -> Account:
    user_id = f"user-{uuid.uuid4().hex[:10]}"
    key = mint_key(database_url, user_id, read_only=read_only)
    client = telnyx.Telnyx(api_key=key, base_url=server.api, max_retries=0, _strict_response_validation=True)
    http = httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return Account(user_id=user_id, key=key, client=client, http=http)


@pytest.fixture
def new_account(server: LiveServer, database_url: str) -> Iterator[Callable[..., Account]]:
    made: list[Account] = []

    def make(*, read_only: bool = False) -> Account:
        acct = _account(server, database_url, read_only=read_only)
        made.append(acct)
        return acct

    yield make
    for acct in made:
        acct.client.close()
        acct.http.close()


@pytest.fixture
def account(new_account: Callable[..., Account]) -> Account:
    return new_account()


@pytest.fixture
def client(account: Account) -> telnyx.Telnyx:
    """The official Telnyx SDK, strict response validation on, retries off, pointed at trunkline."""
    return account.client


@pytest.fixture
def http(account: Account) -> httpx.Client:
    """A raw client for what the SDK cannot express (bad input)."""
    return account.http
