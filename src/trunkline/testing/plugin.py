"""The pytest plugin (entry point `pytest11`: trunkline): a trunkline server and an account per test.

Fixtures (docs/testing.md):

- `trunkline_server` (session): `trunkline serve --ephemeral` on a free port, started the first time
  a test asks for it and stopped at the end of the session; or the server at TRUNKLINE_URL (with
  TRUNKLINE_ADMIN_TOKEN). Under pytest-xdist each worker process has a session of its own, so each
  starts its own server (in parallel, under a second each); to share one, start it yourself and set
  TRUNKLINE_URL and TRUNKLINE_ADMIN_TOKEN.
- `trunkline_account`: a new account with its own key for each test; tests never see each other's
  records, faults or journal, so none needs a reset. It is reset when the test ends, so a long
  session does not pile up records on the server.
- `telnyx_client`: the official SDK's `telnyx.Telnyx` for that account (the test is skipped when
  the `telnyx` package is missing).
- `telnyx_env`: sets TELNYX_BASE_URL and TELNYX_API_KEY for the code under test (returns the account).

Loading the plugin costs nothing: no server starts until a test uses one of these fixtures.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from trunkline.testing._http import ControlError
from trunkline.testing.account import Account
from trunkline.testing.server import TrunklineServer


@pytest.fixture(scope="session")
def trunkline_server() -> Iterator[TrunklineServer]:
    """A trunkline server for the session: `.base_url`, `.new_account()`."""
    with TrunklineServer() as server:
        yield server


@pytest.fixture
def trunkline_account(trunkline_server: TrunklineServer) -> Iterator[Account]:
    """A fresh account: `.key`, `.user_id`, `.base_url` and the control calls (`.fault(...)`,
    `.requests(...)`, `.register(...)`, `.reset()`, `.snapshot()`, `.restore(...)`)."""
    account = trunkline_server.new_account()
    yield account
    try:
        account.reset()
    except (ControlError, OSError) as exc:
        warnings.warn(
            f"trunkline: could not reset account {account.user_id} after the test: {exc}", stacklevel=1
        )
    finally:
        account.close()


@pytest.fixture
def telnyx_client(trunkline_account: Account) -> Iterator[Any]:
    """`telnyx.Telnyx(api_key=account.key, base_url=account.base_url)`, with the SDK's default retries."""
    pytest.importorskip("telnyx", reason="telnyx_client needs the Telnyx SDK: pip install telnyx")
    client = trunkline_account.telnyx_client()
    yield client
    client.close()


@pytest.fixture
def telnyx_env(trunkline_account: Account, monkeypatch: pytest.MonkeyPatch) -> Account:
    """TELNYX_BASE_URL and TELNYX_API_KEY point at the account for the test; returns the account."""
    for name, value in trunkline_account.env.items():
        monkeypatch.setenv(name, value)
    return trunkline_account
