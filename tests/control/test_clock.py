"""The movable server clock (`/_trunkline/clock`): what the API and the SIP edge take as now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.control.conftest import Tenant, assert_error


@pytest.fixture
def reset_clock(admin: httpx.Client) -> Iterator[None]:
    yield
    assert admin.delete("/clock").status_code == 200


def _now(r: httpx.Response) -> dt.datetime:
    assert r.status_code == 200, r.text
    return dt.datetime.fromisoformat(r.json()["data"]["now"])


def test_the_clock_moves_to_a_time_and_on_and_back(admin: httpx.Client, reset_clock: None) -> None:
    moved = _now(admin.put("/clock", json={"now": "2026-12-01T23:59:00Z"}))
    assert abs((moved - dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC)).total_seconds()) < 2
    later = _now(admin.put("/clock", json={"advance_seconds": 120}))
    assert later.date() == dt.date(2026, 12, 2) and 59 < (later - moved).total_seconds() < 125
    real = _now(admin.delete("/clock"))
    assert abs((real - dt.datetime.now(dt.UTC)).total_seconds()) < 2
    assert admin.get("/clock").json()["data"]["offset_ms"] == 0


def test_any_account_reads_the_clock_but_only_the_admin_moves_it(
    admin: httpx.Client, new_tenant: Callable[..., Tenant], reset_clock: None
) -> None:
    tenant = new_tenant()
    assert tenant.control.get("/clock").status_code == 200
    r = tenant.control.put("/clock", json={"offset_ms": 1000})
    assert r.status_code == 403, r.text
    assert admin.get("/clock").json()["data"]["offset_ms"] == 0


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/"),
        ({"now": "2026-12-01T00:00:00Z", "offset_ms": 5}, "/"),
        ({"now": "yesterday"}, "/now"),
        ({"now": "2026-12-01T00:00:00"}, "/now"),
        ({"offset_ms": 10**15}, "/offset_ms"),
        ({"offset_ms": "5"}, "/offset_ms"),
        ({"tomorrow": True}, None),
    ],
)
def test_a_bad_clock_body_is_a_clear_422(
    admin: httpx.Client, body: dict[str, object], pointer: str | None, reset_clock: None
) -> None:
    assert_error(admin.put("/clock", json=body), 422, pointer=pointer)
    assert admin.get("/clock").json()["data"]["offset_ms"] == 0
