"""Who may call the control API: API keys on their own account, the admin token on any, off is 404."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Account
from tests.control.conftest import ADMIN_TOKEN, Tenant, assert_error
from tests.server import LiveServer

ENDPOINTS = [
    ("POST", "/reset"),
    ("GET", "/state"),
    ("PUT", "/state"),
    ("POST", "/faults"),
    ("GET", "/faults"),
    ("DELETE", "/faults"),
    ("DELETE", "/faults/fault_1"),
    ("GET", "/requests"),
    ("DELETE", "/requests"),
    ("PUT", "/registrations/1"),
    ("DELETE", "/registrations/1"),
    ("POST", "/accounts"),
    ("GET", "/clock"),
    ("PUT", "/clock"),
    ("DELETE", "/clock"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_control_off_answers_404_like_any_unknown_route(
    server: LiveServer, account: Account, method: str, path: str
) -> None:
    r = httpx.request(
        method, f"{server.url}/_trunkline{path}", headers={"Authorization": f"Bearer {account.key}"}
    )
    assert_error(r, 404, code="10005")


def test_control_off_is_not_in_the_openapi_document(server: LiveServer) -> None:
    paths = httpx.get(f"{server.url}/v2/openapi.json").json()["paths"]
    assert not any(p.startswith("/_trunkline") for p in paths)


def test_control_on_is_in_the_openapi_document_under_its_own_tag(control_server: LiveServer) -> None:
    doc = httpx.get(f"{control_server.url}/v2/openapi.json").json()
    ops = [op for p, item in doc["paths"].items() if p.startswith("/_trunkline") for op in item.values()]
    assert len(ops) == len(ENDPOINTS)
    assert all(op["tags"] == ["Trunkline control"] for op in ops)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_without_a_credential_every_endpoint_is_401(
    control_server: LiveServer, method: str, path: str
) -> None:
    r = httpx.request(method, f"{control_server.url}/_trunkline{path}")
    assert_error(r, 401, code="10009")
    r = httpx.request(
        method, f"{control_server.url}/_trunkline{path}", headers={"Authorization": "Bearer KEYNOPE_nope"}
    )
    assert_error(r, 401, code="10009")


def test_a_wrong_admin_token_is_401(control_server: LiveServer) -> None:
    for token in (ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], ADMIN_TOKEN.upper()):
        r = httpx.post(f"{control_server.url}/_trunkline/reset", headers={"Authorization": f"Bearer {token}"})
        assert_error(r, 401)


def test_accounts_made_by_the_admin_token_work_and_api_keys_may_not_make_them(
    admin: httpx.Client, tenant: Tenant
) -> None:
    r = admin.post("/accounts", json={"user_id": f"named-{tenant.user_id}"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["user_id"] == f"named-{tenant.user_id}" and data["read_only"] is False
    r = httpx.get(
        str(tenant.http.base_url).rstrip("/") + "/ips", headers={"Authorization": f"Bearer {data['key']}"}
    )
    assert r.status_code == 200
    assert_error(tenant.control.post("/accounts", json={}), 403, code="10010")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"user_id": ""}, "/user_id"),
        ({"user_id": "has space"}, "/user_id"),
        ({"user_id": "x" * 65}, "/user_id"),
        ({"read_only": "yes"}, "/read_only"),
        ({"surprise": 1}, "/surprise"),
    ],
)
def test_account_bodies_are_checked(admin: httpx.Client, body: dict[str, object], pointer: str) -> None:
    assert_error(admin.post("/accounts", json=body), 422, pointer=pointer)


def test_bad_json_and_non_objects_are_400_and_other_types_415(admin: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(admin.post("/accounts", content=b"{nope", headers=headers), 400, code="10015")
    assert_error(admin.post("/accounts", content=b'{"a":1,"a":2}', headers=headers), 400)
    assert_error(admin.post("/accounts", content=b"[1]", headers=headers), 400)
    r = admin.post("/accounts", content=b"user_id=x", headers={"Content-Type": "text/plain"})
    assert_error(r, 415)


def test_read_only_keys_may_only_read(new_tenant: Callable[..., Tenant]) -> None:
    ro = new_tenant(read_only=True)
    assert ro.control.get("/requests").status_code == 200
    assert ro.control.get("/faults").status_code == 200
    assert ro.control.get("/state").status_code == 200
    for method, path in [("POST", "/reset"), ("PUT", "/state"), ("POST", "/faults"), ("DELETE", "/requests")]:
        r = ro.control.request(method, path, json={"path": "/v2/ips", "status": 500, "format": 1})
        assert_error(r, 403, code="10010")
    assert_error(ro.control.put("/registrations/1", json={"status": "Failed"}), 403)


def test_an_api_key_acts_on_its_own_account_only(new_tenant: Callable[..., Tenant]) -> None:
    a, b = new_tenant(), new_tenant()
    assert a.control.get("/requests", params={"account": a.user_id}).status_code == 200
    for method, path in [("GET", "/requests"), ("POST", "/reset"), ("GET", "/state"), ("GET", "/faults")]:
        r = a.control.request(method, path, params={"account": b.user_id})
        assert_error(r, 403, code="10010")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/state"), ("PUT", "/state"), ("POST", "/faults"), ("PUT", "/registrations/1")],
)
def test_the_admin_token_must_name_the_account_where_one_is_needed(
    admin: httpx.Client, method: str, path: str
) -> None:
    r = admin.request(method, path, json={"format": 1, "path": "/v2/ips", "status": 500, "status_": 1})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["source"]["parameter"] == "account"


@pytest.mark.parametrize("value", ["bad\x00", "x" * 65, "with space", ""])
def test_a_bad_account_parameter_is_422(admin: httpx.Client, value: str) -> None:
    assert_error(admin.get("/requests", params={"account": value}), 422)


def test_unknown_control_paths_are_404_and_wrong_methods_405(tenant: Tenant) -> None:
    assert_error(tenant.control.get("/nothing"), 404)
    assert_error(tenant.control.get("/reset"), 405)
