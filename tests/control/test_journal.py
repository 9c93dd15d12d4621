"""The request journal: what an account's code sent and got, newest first, secrets masked, bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import test_settings
from tests.control.conftest import ADMIN_TOKEN, Tenant, assert_error
from tests.server import LiveServer


def journal(t: Tenant, **params: object) -> list[dict[str, object]]:
    r = t.control.get("/requests", params=params)
    assert r.status_code == 200, r.text
    data: list[dict[str, object]] = r.json()["data"]
    return data


def test_entries_hold_the_request_and_its_answer_newest_first(tenant: Tenant) -> None:
    created = tenant.http.post("/ip_connections", json={"connection_name": "pbx"}).json()["data"]
    tenant.http.get(f"/ip_connections/{created['id']}", params={"x": "1"})
    newest, oldest = journal(tenant)
    assert newest["method"] == "GET" and newest["path"] == f"/v2/ip_connections/{created['id']}"
    assert newest["query"] == "x=1" and newest["request_body"] is None
    assert newest["status"] == 200 and newest["response_body"] == {"data": created}
    assert oldest["method"] == "POST" and oldest["request_body"] == {"connection_name": "pbx"}
    assert oldest["status"] == 201
    assert int(str(newest["id"])) > int(str(oldest["id"]))
    assert str(newest["time"]).endswith("Z") and float(str(newest["duration_ms"])) >= 0
    assert newest["user_id"] == tenant.user_id


def test_passwords_keys_and_tokens_are_masked(tenant: Tenant) -> None:
    body = {
        "connection_name": "office",
        "user_name": f"mask{tenant.user_id[-10:]}",
        "password": "super-secret-password",
    }
    assert tenant.http.post("/credential_connections", json=body).status_code == 201
    tenant.http.post(
        "/ip_connections",
        json={
            "connection_name": "tok",
            "outbound": {"ip_authentication_token": "tokenvalue123456", "nested": {"api_key": 5}},
        },
    )
    tenant.http.get("/ips", params={"token": "qs-secret", "page[size]": "2"})
    tenant.http.post("/ips", content=b"password=form-secret&x=1", headers={"Content-Type": "text/plain"})
    tenant.http.post("/ips", content=b'{"pass\\u0077ord": "escaped-secret"}')
    tenant.http.post("/ips", json={"key": {"deep": "object-secret"}})
    text = tenant.control.get("/requests").text
    for secret in (
        "super-secret-password",
        "tokenvalue123456",
        "qs-secret",
        "form-secret",
        "escaped-secret",
        "object-secret",
    ):
        assert secret not in text
    entries = journal(tenant, path="/v2/credential_connections")
    assert entries[0]["request_body"]["password"] == "********"  # type: ignore[index]
    assert entries[0]["response_body"]["data"]["password"] == "********"  # type: ignore[index]
    assert "token=********" in str(journal(tenant, path="/v2/ips", method="GET")[0]["query"])


def test_filters_by_method_path_pattern_and_limit(tenant: Tenant) -> None:
    conn = tenant.http.post("/ip_connections", json={"connection_name": "f"}).json()["data"]
    for n in range(3):
        tenant.http.post("/ips", json={"ip_address": f"198.51.100.{n + 1}", "connection_id": conn["id"]})
    tenant.http.get("/ips")
    assert len(journal(tenant, method="post", path="/v2/ips")) == 3
    assert len(journal(tenant, method="GET")) == 1
    assert len(journal(tenant, path="/v2/*")) == 5
    assert len(journal(tenant, path="/v2/**", limit=2)) == 2
    assert journal(tenant, path="/v2/fqdns") == []
    assert_error(tenant.control.get("/requests", params={"limit": 0}), 422)
    assert_error(tenant.control.get("/requests", params={"path": "/v2//x*"}), 422, pointer="/path")
    assert_error(tenant.control.get("/requests", params={"method": "G E T"}), 422)


def test_delete_clears_and_control_calls_are_not_journaled(tenant: Tenant) -> None:
    tenant.http.get("/ips")
    tenant.control.get("/faults")
    assert len(journal(tenant)) == 1
    assert tenant.control.delete("/requests").json()["data"] == {"deleted": 1}
    assert journal(tenant) == []


def test_requests_without_an_account_are_not_journaled(tenant: Tenant, admin: httpx.Client) -> None:
    base = str(tenant.http.base_url).rstrip("/")
    httpx.get(f"{base}/ips", headers={"Authorization": "Bearer KEYWRONG_x"})
    httpx.get(f"{base}/openapi.json")
    tenant.http.get("/no_such_route")
    assert journal(tenant) == []


def test_journals_are_walled_off(new_tenant: Callable[..., Tenant], admin: httpx.Client) -> None:
    a, b = new_tenant(), new_tenant()
    a.http.get("/ips")
    assert journal(b) == []
    assert b.control.delete("/requests").json()["data"] == {"deleted": 0}
    assert len(journal(a)) == 1
    assert len(admin.get("/requests", params={"account": a.user_id}).json()["data"]) == 1
    everyone = admin.get("/requests").json()["data"]
    assert a.user_id in {e["user_id"] for e in everyone}


def test_a_read_only_key_is_journaled_with_its_refusal(new_tenant: Callable[..., Tenant]) -> None:
    ro = new_tenant(read_only=True)
    assert ro.http.post("/ip_connections", json={"connection_name": "x"}).status_code == 403
    assert [e["status"] for e in journal(ro)] == [403]


@pytest.fixture(scope="module")
def small_journal(database_url: str) -> Iterator[LiveServer]:
    settings = test_settings(database_url, control=True, admin_token=ADMIN_TOKEN, journal_limit=5)
    live = LiveServer(settings).start()
    yield live
    live.stop()


def test_the_journal_keeps_journal_limit_entries_per_account(small_journal: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    key = httpx.post(f"{small_journal.url}/_trunkline/accounts", headers=admin).json()["data"]["key"]
    auth = {"Authorization": f"Bearer {key}"}
    for n in range(8):
        httpx.get(f"{small_journal.api}/ips", params={"n": n}, headers=auth)
    entries = httpx.get(f"{small_journal.url}/_trunkline/requests", headers=auth).json()["data"]
    assert [e["query"] for e in entries] == [f"n={n}" for n in (7, 6, 5, 4, 3)]
