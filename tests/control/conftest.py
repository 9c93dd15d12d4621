"""A live server with the control API on, and accounts made through it (POST /_trunkline/accounts)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import telnyx

from tests.conftest import test_settings
from tests.server import LiveServer

ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def control_server(database_url: str) -> Iterator[LiveServer]:
    live = LiveServer(test_settings(database_url, control=True, admin_token=ADMIN_TOKEN)).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def admin(control_server: LiveServer) -> Iterator[httpx.Client]:
    """The admin token's client for /_trunkline/."""
    with httpx.Client(
        base_url=f"{control_server.url}/_trunkline",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    ) as client:
        yield client


@dataclass
class Tenant:
    """An account on the control server: its key, the SDK, a /v2 client and a /_trunkline client."""

    user_id: str
    key: str
    client: telnyx.Telnyx
    http: httpx.Client
    control: httpx.Client

    def sdk(self, **options: object) -> telnyx.Telnyx:
        """The SDK for this account with other options (retries), strict response validation on."""
        return self.client.with_options(**options)  # type: ignore[arg-type]


@pytest.fixture
def new_tenant(control_server: LiveServer, admin: httpx.Client) -> Iterator[Callable[..., Tenant]]:
    made: list[Tenant] = []

    def make(*, read_only: bool = False) -> Tenant:
        r = admin.post("/accounts", json={"read_only": read_only})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        key = data["key"]
        headers = {"Authorization": f"Bearer {key}"}
        tenant = Tenant(
            user_id=data["user_id"],
            key=key,
            client=telnyx.Telnyx(
                api_key=key, base_url=control_server.api, max_retries=0, _strict_response_validation=True
            ),
            http=httpx.Client(base_url=control_server.api, headers=headers, timeout=30),
            control=httpx.Client(base_url=f"{control_server.url}/_trunkline", headers=headers, timeout=30),
        )
        made.append(tenant)
        return tenant

    yield make
    for t in made:
        t.client.close()
        t.http.close()
        t.control.close()


@pytest.fixture
def tenant(new_tenant: Callable[..., Tenant]) -> Tenant:
    return new_tenant()


def assert_error(
    r: httpx.Response, status: int, *, code: str | None = None, pointer: str | None = None
) -> None:
    assert r.status_code == status, r.text
    errors = r.json()["errors"]
    assert errors, r.text
    if code is not None:
        assert any(e["code"] == code for e in errors), r.text
    if pointer is not None:
        assert any((e.get("source") or {}).get("pointer") == pointer for e in errors), r.text
