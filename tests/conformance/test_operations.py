"""Health, readiness, OpenAPI, request ids and the access log."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.conftest import Account, mint_key, test_settings
from tests.server import LiveServer
from trunkline.http.middleware import JsonLogFormatter


def test_health_and_ready_need_no_key(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}


def test_openapi_document_lists_every_resource(server: LiveServer) -> None:
    doc = httpx.get(f"{server.api}/openapi.json").json()
    paths = set(doc["paths"])
    for path in (
        "/v2/connections",
        "/v2/credential_connections",
        "/v2/fqdn_connections",
        "/v2/ip_connections",
        "/v2/ips",
        "/v2/credential_connections/{id}/actions/check_registration_status",
    ):
        assert path in paths
    assert "CredentialConnectionCreate" in doc["components"]["schemas"]
    assert httpx.get(f"{server.api}/docs").status_code == 200


def test_request_id_is_echoed_or_minted(account: Account) -> None:
    r = account.http.get("/ips", headers={"X-Request-Id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    minted = account.http.get("/ips").headers["x-request-id"]
    assert len(minted) == 36


def test_access_log_has_one_json_line_per_request_without_the_key(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveServer(test_settings(database_url, access_log=True)).start()
    key = mint_key(database_url, "log-account")
    # The line is written after the response is sent: keep capturing until the server has stopped.
    with caplog.at_level(logging.INFO, logger="trunkline.access"):
        try:
            r = httpx.get(
                f"{live.api}/ips", headers={"Authorization": f"Bearer {key}", "X-Request-Id": "log-1"}
            )
            assert r.status_code == 200
        finally:
            live.stop()
    records = [r for r in caplog.records if getattr(r, "fields", {}).get("request_id") == "log-1"]
    assert len(records) == 1
    fields = records[0].fields  # type: ignore[attr-defined]
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/v2/ips", 200)
    assert fields["key_id"] == key.split("_")[0]
    line = JsonLogFormatter().format(records[0])
    assert key not in line and key.split("_", 1)[1] not in line
    assert json.loads(line)["duration_ms"] >= 0
