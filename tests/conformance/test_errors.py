"""The error envelope for what goes wrong before a resource sees the request: bodies, routes, keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import telnyx

from tests import conftest
from tests.conformance._connections import assert_error, errors_of
from tests.conftest import Account, mint_key
from tests.server import LiveServer
from trunkline.resources import api_keys
from trunkline.store.db import Database


@pytest.fixture(scope="module")
def auth_server(database_url: str) -> Iterator[LiveServer]:
    """A server of its own for the tests that fail authentication on purpose, many times.

    Failed attempts are limited per client address; on the shared server these would lock every other
    test on 127.0.0.1 out.
    """
    live = LiveServer(conftest.test_settings(database_url, auth_failure_limit=1_000_000)).start()
    yield live
    live.stop()


def revoke(database_url: str, key: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                key_id = api_keys.key_id_of(key)
                assert key_id is not None
                await api_keys.revoke(conn, key_id)
        finally:
            await db.dispose()

    asyncio.run(go())


def raw(
    http: httpx.Client, method: str, path: str, content: bytes | str, ctype: str | None
) -> httpx.Response:
    headers = {"Content-Type": ctype} if ctype else {}
    return http.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize("content", [b"{", b'{"connection_name": "x",}', b"{'a': 1}", b"\xff\xfe", b"nul"])
def test_create_malformed_json_is_400(http: httpx.Client, content: bytes) -> None:
    r = raw(http, "POST", "/ip_connections", content, "application/json")
    entry = assert_error(r, 400, code="10015", pointer="/", title="Bad Request")
    assert "JSON" in entry["detail"]


@pytest.mark.parametrize("content", [b"[]", b"[{}]", b'"text"', b"42", b"true", b"null"])
def test_create_non_object_body_is_400(http: httpx.Client, content: bytes) -> None:
    r = raw(http, "POST", "/ip_connections", content, "application/json")
    assert_error(r, 400, code="10015", pointer="/", title="Bad Request")


def test_update_malformed_json_is_400_and_changes_nothing(client: telnyx.Telnyx, http: httpx.Client) -> None:
    created = client.ip_connections.create(connection_name="keep").data
    r = raw(http, "PATCH", f"/ip_connections/{created.id}", b'{"connection_name": "x"', "application/json")
    assert_error(r, 400, code="10015", pointer="/")
    assert client.ip_connections.retrieve(created.id).data.connection_name == "keep"


def test_create_deeply_nested_json_is_400_not_500(http: httpx.Client) -> None:
    r = raw(http, "POST", "/ip_connections", b"[" * 5000 + b"]" * 5000, "application/json")
    assert_error(r, 400, code="10015", pointer="/")


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_create_wrong_content_type_is_415(http: httpx.Client, ctype: str) -> None:
    r = raw(http, "POST", "/ip_connections", b'{"connection_name": "x"}', ctype)
    entry = assert_error(r, 415, code="10015", pointer="/", title="Unsupported media type")
    assert "application/json" in entry["detail"]
    assert http.get("/ip_connections").json()["meta"]["total_results"] == 0


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json", None]
)
def test_create_json_content_type_variants_are_accepted(http: httpx.Client, ctype: str | None) -> None:
    r = raw(http, "POST", "/ip_connections", b'{"connection_name": "typed"}', ctype)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["connection_name"] == "typed"


def test_create_body_over_the_limit_is_413(http: httpx.Client) -> None:
    big = b'{"connection_name": "x", "tags": ["' + b"a" * 1_100_000 + b'"]}'
    r = raw(http, "POST", "/ip_connections", big, "application/json")
    assert_error(r, 413, code="10015", title="Payload too large")
    assert http.get("/ip_connections").json()["meta"]["total_results"] == 0


def test_create_streamed_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"connection_name": "x", "tags": ["'
        for _ in range(40):
            yield b"a" * 32_768
        yield b'"]}'

    # A generator body goes out chunked, without Content-Length: the limit applies while reading.
    r = http.post("/ip_connections", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, code="10015", title="Payload too large")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing_here"),
        ("GET", "/credential_connections/1/actions/nothing"),
        ("POST", "/connections/1/actions/check_registration_status"),
        ("GET", "/ip_connections/1/extra/segments"),
    ],
)
def test_unknown_route_is_404_envelope(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path), 404, code="10005", pointer="/", title="Resource not found")


def test_unknown_route_outside_v2_is_404_envelope(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/v1/credential_connections")
    assert_error(r, 404, code="10005", pointer="/")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/ip_connections/1"),
        ("DELETE", "/ip_connections"),
        ("PATCH", "/connections/1"),
        ("POST", "/connections"),
        ("DELETE", "/connections/1"),
        ("PUT", "/credential_connections"),
    ],
)
def test_wrong_method_is_405_envelope(http: httpx.Client, method: str, path: str) -> None:
    entry = assert_error(
        http.request(method, path), 405, code="10015", pointer="/", title="Method not allowed"
    )
    assert method in entry["detail"]


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    (entry,) = errors_of(r)
    assert entry["code"] == "10009"
    assert entry["title"] == "Authentication failed"
    assert entry["detail"]
    assert "source" not in entry  # Telnyx's 401 example carries no pointer


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Token KEY0123456789ABCDEF0123_abc",
        "Bearer KEY0123456789ABCDEF0123_not-a-real-secret",
        "Bearer not-even-shaped-like-a-key",
    ],
)
def test_request_without_a_valid_key_is_401(auth_server: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for method, path in (("GET", "/ip_connections"), ("POST", "/ip_connections"), ("GET", "/connections/1")):
        _assert_401(httpx.request(method, f"{auth_server.api}{path}", headers=headers, json={}))


def test_request_with_a_key_of_wrong_secret_is_401(account: Account, auth_server: LiveServer) -> None:
    forged = account.key[:-4] + ("AAAA" if not account.key.endswith("AAAA") else "BBBB")
    _assert_401(httpx.get(f"{auth_server.api}/ip_connections", headers={"Authorization": f"Bearer {forged}"}))


def test_request_without_key_is_401_before_the_body_is_read(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.api}/ip_connections", content=b"{not json", headers={"Content-Type": "text/plain"}
    )
    _assert_401(r)


def test_sdk_with_unknown_key_raises_authentication_error(auth_server: LiveServer) -> None:
    sdk = telnyx.Telnyx(api_key="KEY00_unknown", base_url=auth_server.api, max_retries=0)
    with sdk, pytest.raises(telnyx.AuthenticationError) as err:
        sdk.ip_connections.list()
    assert err.value.status_code == 401


def test_revoked_key_is_401(new_account: Callable[..., Account], database_url: str) -> None:
    acct = new_account()
    assert acct.http.get("/ip_connections").status_code == 200
    revoke(database_url, acct.key)
    deadline = time.monotonic() + 5
    while acct.http.get("/ip_connections").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)  # the key cache may trust it for key_cache_seconds (0.5 s in tests)
    _assert_401(acct.http.get("/ip_connections"))
    _assert_401(acct.http.post("/ip_connections", json={}))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/ip_connections", {}),
        (
            "POST",
            "/credential_connections",
            {"connection_name": "c", "user_name": "abcde12345", "password": "p" * 8},
        ),
        ("PATCH", "/ip_connections/{id}", {"connection_name": "changed"}),
        ("DELETE", "/ip_connections/{id}", None),
        ("POST", "/ips", {"ip_address": "192.0.2.200"}),
    ],
)
def test_read_only_key_writing_is_403(
    new_account: Callable[..., Account], database_url: str, method: str, path: str, body: dict | None
) -> None:
    owner = new_account()
    existing = owner.client.ip_connections.create(connection_name="owned").data
    key = mint_key(database_url, owner.user_id, read_only=True)
    with httpx.Client(base_url=str(owner.http.base_url), headers={"Authorization": f"Bearer {key}"}) as ro:
        r = ro.request(method, path.format(id=existing.id), json=body)
        entry = assert_error(r, 403, code="10010", pointer="/")
        assert "read-only" in entry["detail"]
        # Reads work, and the write did not happen.
        listed = ro.get("/ip_connections").json()
        assert [c["id"] for c in listed["data"]] == [existing.id]
        assert listed["data"][0]["connection_name"] == "owned"
        assert ro.get(f"/connections/{existing.id}").status_code == 200


def test_read_only_key_may_check_registration_status(
    new_account: Callable[..., Account], database_url: str
) -> None:
    owner = new_account()
    conn = owner.client.credential_connections.create(
        connection_name="ro", user_name=f"ro{owner.user_id[-8:]}", password="password123"
    ).data
    key = mint_key(database_url, owner.user_id, read_only=True)
    with httpx.Client(base_url=str(owner.http.base_url), headers={"Authorization": f"Bearer {key}"}) as ro:
        r = ro.post(f"/credential_connections/{conn.id}/actions/check_registration_status")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["status"] == "Not Registered"


def test_error_responses_are_json_with_request_id(http: httpx.Client) -> None:
    r = http.get("/ip_connections/1", headers={"X-Request-Id": "trace-123"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"] == "trace-123"


def test_create_nul_character_in_connection_name_is_422(http: httpx.Client) -> None:
    r = http.post(
        "/ip_connections", json={"connection_name": "a\u0000b", "webhook_event_url": "https://x/\u0000"}
    )
    assert r.status_code == 422, r.text
    assert [e["source"]["pointer"] for e in errors_of(r)] == ["/connection_name", "/webhook_event_url"]
    assert http.get("/ip_connections").json()["meta"]["total_results"] == 0


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        # Free text that lives only in the stored document is refused too: one rule for every body.
        ("/ip_connections", {"tags": ["ok", "a\u0000b"]}, "/tags/1"),
        (
            "/ip_connections",
            {"inbound": {"sip_subdomain_receive_settings": "\u0000"}},
            "/inbound/sip_subdomain_receive_settings",
        ),
        (
            "/ip_connections",
            {"outbound": {"outbound_voice_profile_id": "12\u00003"}},
            "/outbound/outbound_voice_profile_id",
        ),
        ("/ips", {"ip_address": "192.0.2.99", "connection_id": "12\u00003"}, "/connection_id"),
        ("/access_ip_ranges", {"cidr_block": "192.0.2.0/24", "description": "a\u0000"}, "/description"),
        ("/outbound_voice_profiles", {"name": "p\u0000rofile"}, "/name"),
        ("/ip_connections", {"x\u0000y": 1}, "/x\\u0000y"),
    ],
)
def test_create_nul_anywhere_in_a_body_is_422_at_its_field(
    http: httpx.Client, path: str, body: dict[str, Any], pointer: str
) -> None:
    before = http.get(path).json()["meta"]["total_results"]
    assert_error(http.post(path, json=body), 422, code="10015", pointer=pointer)
    assert http.get(path).json()["meta"]["total_results"] == before


def test_create_escaped_backslash_u0000_text_is_not_a_nul(http: httpx.Client) -> None:
    r = raw(http, "POST", "/ip_connections", b'{"connection_name": "\\\\u0000"}', "application/json")
    assert r.status_code == 201, r.text
    assert r.json()["data"]["connection_name"] == "\\u0000"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ip_connections/%00"),
        ("GET", "/connections/%00abc"),
        ("PATCH", "/credential_connections/1%002"),
        ("DELETE", "/fqdn_connections/%00"),
        ("POST", "/credential_connections/1%00/actions/check_registration_status"),
    ],
)
def test_nul_character_in_a_connection_id_is_404(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path, json={} if method == "PATCH" else None), 404, code="10005")


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("filter[connection_name][contains]=a%00bc", "/filter/connection_name/contains"),
        ("filter[fqdn]=%00", "/filter/fqdn"),
        ("filter[outbound_voice_profile_id]=%00", "/filter/outbound_voice_profile_id"),
        ("filter[outbound.outbound_voice_profile_id]=1%00", "/filter/outbound.outbound_voice_profile_id"),
    ],
)
def test_list_nul_character_in_a_filter_is_422(http: httpx.Client, query: str, pointer: str) -> None:
    for path in ("/connections", "/ip_connections"):
        assert_error(http.get(f"{path}?{query}"), 422, pointer=pointer)


@pytest.mark.parametrize(
    ("path", "content", "key"),
    [
        ("/ip_connections", b'{"connection_name": "a", "connection_name": "b"}', "connection_name"),
        ("/ip_connections", b'{"inbound": {"channel_limit": 1, "channel_limit": 2}}', "channel_limit"),
        ("/ips", b'{"ip_address": "192.0.2.7", "ip_address": "192.0.2.8"}', "ip_address"),
        ("/outbound_voice_profiles", b'{"name": "one", "tags": [{"a": 1, "a": 1}], "name": "two"}', "a"),
    ],
)
def test_duplicate_keys_in_a_body_are_400(http: httpx.Client, path: str, content: bytes, key: str) -> None:
    """I-JSON (RFC 7493 §2.3): one key per object. Parsers that take the first or the last would read
    such a body differently, so it is refused whole and nothing is created."""
    before = http.get(path).json()["meta"]["total_results"]
    entry = assert_error(raw(http, "POST", path, content, "application/json"), 400, title="Bad Request")
    assert f"'{key}'" in entry["detail"], entry
    assert http.get(path).json()["meta"]["total_results"] == before


def test_the_same_key_in_sibling_objects_is_not_a_duplicate(http: httpx.Client) -> None:
    content = (
        b'{"connection_name": "siblings", "inbound": {"channel_limit": 1}, "outbound": {"channel_limit": 2}}'
    )
    r = raw(http, "POST", "/ip_connections", content, "application/json")
    assert r.status_code == 201, r.text
    assert r.json()["data"]["outbound"]["channel_limit"] == 2
