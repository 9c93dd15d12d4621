"""Fault rules: Telnyx-shaped failures and latency on an account's own /v2 requests, counted exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import telnyx

from tests.control.conftest import Tenant, assert_error


def fault(t: Tenant, **rule: object) -> dict[str, object]:
    r = t.control.post("/faults", json=rule)
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()["data"]
    return data


def test_rules_are_created_listed_and_deleted(tenant: Tenant) -> None:
    one = fault(tenant, method="post", path="/v2/ips", status=503, times=2)
    assert one["method"] == "POST" and one["remaining"] == 2 and one["probability"] == 1.0
    two = fault(tenant, path="/v2/ips/*", latency_ms=5)
    assert [r["id"] for r in tenant.control.get("/faults").json()["data"]] == [one["id"], two["id"]]
    r = tenant.control.delete(f"/faults/{one['id']}")
    assert r.status_code == 200 and r.json()["data"]["id"] == one["id"]
    assert_error(tenant.control.delete(f"/faults/{one['id']}"), 404, code="10005")
    assert tenant.control.delete("/faults").json()["data"] == {"deleted": 1}
    assert tenant.control.get("/faults").json()["data"] == []


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        ({"path": "/v2/ips", "status": 99}, "/status"),
        ({"path": "/v2/ips", "status": 600}, "/status"),
        ({"path": "/v2/ips", "status": 200}, "/status"),
        ({"path": "/v2/ips", "status": "500"}, "/status"),
        ({"path": "/ips", "status": 500}, "/path"),
        ({"path": "v2/ips", "status": 500}, "/path"),
        ({"path": "/v2//ips", "status": 500}, "/path"),
        ({"path": "/v2/ip**s", "status": 500}, "/path"),
        ({"path": "/v2/ips?x=1", "status": 500}, "/path"),
        ({"path": "/_trunkline/reset", "status": 500}, "/path"),
        ({"status": 500}, "/path"),
        ({"path": "/v2/ips", "status": 500, "method": "FETCH"}, "/method"),
        ({"path": "/v2/ips", "status": 500, "times": 0}, "/times"),
        ({"path": "/v2/ips", "status": 500, "times": "3"}, "/times"),
        ({"path": "/v2/ips", "status": 500, "probability": 0}, "/probability"),
        ({"path": "/v2/ips", "status": 500, "probability": 1.5}, "/probability"),
        ({"path": "/v2/ips", "latency_ms": -1}, "/latency_ms"),
        ({"path": "/v2/ips", "latency_ms": 600_001}, "/latency_ms"),
        ({"path": "/v2/ips", "status": 500, "headers": {"bad name": "x"}}, "/headers"),
        ({"path": "/v2/ips", "status": 500, "headers": {"x-a": "1\r\nx-b: 2"}}, "/headers"),
        ({"path": "/v2/ips", "status": 500, "headers": {"Content-Length": "1"}}, "/headers"),
        ({"path": "/v2/ips", "status": 500, "headers": {"x-a": 1}}, "/headers"),
        ({"path": "/v2/ips", "status": 500, "body": "text"}, "/body"),
        ({"path": "/v2/ips", "status": 500, "surprise": True}, "/surprise"),
        ({"path": "/v2/ips"}, "/"),
        ({"path": "/v2/ips", "latency_ms": 5, "body": {}}, "/"),
    ],
)
def test_bad_rules_are_422_at_their_field(tenant: Tenant, rule: dict[str, object], pointer: str) -> None:
    assert_error(tenant.control.post("/faults", json=rule), 422, code="10015", pointer=pointer)
    assert tenant.control.get("/faults").json()["data"] == []


def test_bad_json_is_400(tenant: Tenant) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(tenant.control.post("/faults", content=b'{"path": ', headers=headers), 400)
    assert_error(tenant.control.post("/faults", content=b'"x"', headers=headers), 400)


def test_an_account_holds_at_most_100_rules(tenant: Tenant) -> None:
    for _ in range(100):
        fault(tenant, path="/v2/fqdns", status=500)
    assert_error(tenant.control.post("/faults", json={"path": "/v2/fqdns", "status": 500}), 422)
    assert tenant.control.delete("/faults").json()["data"] == {"deleted": 100}


def test_a_500_surfaces_in_the_sdk_and_changes_nothing(tenant: Tenant) -> None:
    rule = fault(tenant, method="POST", path="/v2/ip_connections", status=500, times=1)
    with pytest.raises(telnyx.InternalServerError) as caught:
        tenant.client.ip_connections.create(connection_name="never")
    assert caught.value.response.headers["x-trunkline-fault"] == rule["id"]
    body = caught.value.response.json()
    assert body["errors"][0]["code"] == "10007"
    assert tenant.client.ip_connections.list().data == []
    journal = tenant.control.get("/requests", params={"method": "POST"}).json()["data"]
    assert [(e["status"], e["fault_id"]) for e in journal] == [(500, rule["id"])]
    # `times: 1` is spent: the rule is gone and the next request is served.
    assert tenant.control.get("/faults").json()["data"] == []
    assert tenant.client.ip_connections.create(connection_name="now").data is not None


def test_the_sdk_with_retries_recovers_from_a_429_after_its_retry_after(tenant: Tenant) -> None:
    fault(tenant, method="POST", path="/v2/credential_connections", status=429, times=1)
    sdk = tenant.sdk(max_retries=2)
    started = time.monotonic()
    created = sdk.credential_connections.create(
        connection_name="retry", user_name=f"retry{tenant.user_id[-10:]}", password="retry-pass-123"
    ).data
    elapsed = time.monotonic() - started
    assert created is not None and created.connection_name == "retry"
    assert elapsed >= 1.0  # Retry-After: 1 honoured
    attempts = tenant.control.get(
        "/requests", params={"method": "POST", "path": "/v2/credential_connections"}
    ).json()["data"]
    assert [e["status"] for e in attempts] == [201, 429]  # newest first: one refusal, one success
    assert len(tenant.client.credential_connections.list().data) == 1


def test_a_429_carries_retry_after_and_rate_limit_headers_unless_given(tenant: Tenant) -> None:
    fault(tenant, path="/v2/ips", status=429, times=1)
    r = tenant.http.get("/ips")
    assert_error(r, 429, code="10011")
    assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "1000"
    assert r.headers["x-ratelimit-remaining"] == "0" and r.headers["x-ratelimit-reset"] == "1"
    assert r.headers.get_list("x-ratelimit-limit") == [r.headers["x-ratelimit-limit"]]  # once, not twice
    fault(tenant, path="/v2/ips", status=429, times=1, headers={"Retry-After": "7", "x-ratelimit-limit": "5"})
    r = tenant.http.get("/ips")
    assert r.headers["retry-after"] == "7" and r.headers["retry-after-ms"] == "7000"
    assert r.headers.get_list("x-ratelimit-limit") == ["5"]


def test_a_rule_may_give_its_own_body_and_headers(tenant: Tenant) -> None:
    body = {"errors": [{"code": "90001", "title": "Custom", "detail": "From the rule."}]}
    fault(tenant, path="/v2/fqdns", status=418, body=body, headers={"x-custom": "yes"})
    r = tenant.http.get("/fqdns")
    assert r.status_code == 418 and r.json() == body and r.headers["x-custom"] == "yes"
    fault(tenant, path="/v2/ips", status=502)
    r = tenant.http.get("/ips")
    assert_error(r, 502, code="10007")


def test_method_and_path_patterns_decide_what_matches(tenant: Tenant) -> None:
    fault(tenant, method="GET", path="/v2/ips/*", status=503)
    fault(tenant, method="DELETE", path="/v2/**", status=504)
    assert tenant.http.get("/ips").status_code == 200  # `*` needs a segment
    assert tenant.http.get("/ips/6f9a3c1e-0000-4000-8000-000000000000").status_code == 503
    assert tenant.http.post("/ips", json={}).status_code == 422  # POST is not GET
    assert tenant.http.delete("/fqdns/1").status_code == 504
    assert tenant.http.delete("/ip_connections/1").status_code == 504
    # Faults apply to the API's routes: a path no route serves is 404 whatever the rules say.
    assert tenant.http.delete("/ip_connections/1/x/y").status_code == 404


def test_times_is_exact_under_ten_simultaneous_requests(tenant: Tenant) -> None:
    fault(tenant, path="/v2/outbound_voice_profiles", status=503, times=3)

    def get(_: int) -> int:
        return tenant.http.get("/outbound_voice_profiles").status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(get, range(10)))
    assert sorted(statuses) == [200] * 7 + [503] * 3
    assert tenant.control.get("/faults").json()["data"] == []


def test_probability_fires_some_of_the_time(tenant: Tenant) -> None:
    fault(tenant, path="/v2/ips", status=500, probability=0.5)
    statuses = [tenant.http.get("/ips").status_code for _ in range(60)]
    assert 0 < statuses.count(500) < 60


def test_latency_delays_the_real_answer(tenant: Tenant) -> None:
    fault(tenant, path="/v2/ips", latency_ms=300, times=1)
    started = time.monotonic()
    r = tenant.http.get("/ips")
    assert r.status_code == 200 and time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert tenant.http.get("/ips").status_code == 200
    assert time.monotonic() - started < 0.3
    fault(tenant, path="/v2/ips", latency_ms=200, status=503, times=1)
    started = time.monotonic()
    assert tenant.http.get("/ips").status_code == 503 and time.monotonic() - started >= 0.2


def test_rules_touch_only_their_own_account(new_tenant: Callable[..., Tenant], admin: httpx.Client) -> None:
    a, b = new_tenant(), new_tenant()
    rule = fault(a, path="/v2/**", status=500)
    assert b.http.get("/ips").status_code == 200
    assert a.http.get("/ips").status_code == 500
    assert b.control.get("/faults").json()["data"] == []
    assert_error(b.control.delete(f"/faults/{rule['id']}"), 404)
    assert b.control.delete("/faults").json()["data"] == {"deleted": 0}
    assert len(a.control.get("/faults").json()["data"]) == 1
    # The admin token sees every account's rules and may act on one of them.
    mine = admin.get("/faults", params={"account": a.user_id}).json()["data"]
    assert [r["id"] for r in mine] == [rule["id"]]
    assert rule["id"] in [r["id"] for r in admin.get("/faults").json()["data"]]
    r = admin.post("/faults", params={"account": b.user_id}, json={"path": "/v2/ips", "status": 404})
    assert r.status_code == 201
    assert b.http.get("/ips").status_code == 404
    assert admin.delete(f"/faults/{rule['id']}").status_code == 200
    assert a.http.get("/ips").status_code == 200


def test_control_calls_and_unauthenticated_requests_are_never_faulted(tenant: Tenant) -> None:
    fault(tenant, path="/v2/**", status=500)
    assert tenant.control.get("/faults").status_code == 200
    r = httpx.get(str(tenant.http.base_url).rstrip("/") + "/ips")
    assert_error(r, 401)
