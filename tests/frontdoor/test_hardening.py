"""Hardening: security headers, slow and bloated clients against `trunkline serve`, no secrets in logs."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import conftest
from tests.conftest import Account
from tests.frontdoor._clients import ServeProcess, http_from, serve
from tests.server import LiveServer
from trunkline.http.middleware import JsonLogFormatter

READ_TIMEOUT = 1.0
MAX_HEAD = 4096


def test_json_responses_carry_security_headers(account: Account, server: LiveServer) -> None:
    for r in (
        account.http.get("/ips"),
        account.http.get("/no-such-route"),
        httpx.get(f"{server.api}/ips"),  # 401
        httpx.get(f"{server.url}/health"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_docs_page_has_a_csp_of_its_own_that_admits_only_its_assets(server: LiveServer) -> None:
    r = httpx.get(f"{server.api}/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    csp = r.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; script-src 'self'; style-src 'self';"), csp
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def guarded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`trunkline serve` with a 1 s request read timeout, a 4 KiB head cap and the access log on."""
    log_dir = tmp_path_factory.mktemp("serve")
    env = {
        "request_read_timeout_seconds": str(READ_TIMEOUT),
        "max_header_bytes": str(MAX_HEAD),
        "access_log": "true",
    }
    with serve(database_url, log_dir, **env) as proc:
        yield proc


def _connect(p: ServeProcess) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    return s


def _read_all(s: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start, chunks = time.perf_counter(), []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks), time.perf_counter() - start


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_a_connection_that_sends_nothing_is_closed_with_408(guarded: ServeProcess) -> None:
    with _connect(guarded) as s:
        raw, waited = _read_all(s)
    status, body = _status_and_body(raw)
    assert status == 408 and body["errors"][0]["title"] == "Request timeout"
    assert READ_TIMEOUT * 0.8 < waited < READ_TIMEOUT + 2


def test_a_request_head_sent_slowly_is_cut_off(guarded: ServeProcess) -> None:
    with _connect(guarded) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):
            time.sleep(0.4)
            try:
                s.sendall(b"X-Drip: 1\r\n")
            except OSError:
                break
        raw, _ = _read_all(s)
    assert raw.startswith(b"HTTP/1.1 408 ")


def test_a_body_sent_slowly_is_cut_off_and_the_server_carries_on(
    guarded: ServeProcess, database_url: str
) -> None:
    key = conftest.mint_key(database_url, "hardening-slow-body")
    with _connect(guarded) as s:
        s.sendall(
            b"POST /v2/ip_connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        _, waited = _read_all(s)
    assert waited < READ_TIMEOUT + 2
    assert httpx.get(f"http://127.0.0.1:{guarded.port}/health").status_code == 200
    time.sleep(0.2)
    # The application saw an incomplete body: a client error in the access log, not a traceback.
    lines = [json.loads(line) for line in guarded.log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if "exception" in line or line["level"] == "error"]
    assert any(line.get("path") == "/v2/ip_connections" and line.get("status") == 400 for line in lines)


def test_an_oversized_request_head_is_431(guarded: ServeProcess) -> None:
    with _connect(guarded) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD + 1) + b"\r\n\r\n")
        raw, _ = _read_all(s)
    status, body = _status_and_body(raw)
    assert status == 431 and body["errors"][0]["code"] == "10015"


def test_garbage_instead_of_http_is_400_in_the_envelope(guarded: ServeProcess) -> None:
    with _connect(guarded) as s:
        s.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        raw, _ = _read_all(s)
    status, body = _status_and_body(raw)
    assert status == 400 and body["errors"][0]["code"] == "10015"


def test_bodies_do_not_count_against_the_head_cap(guarded: ServeProcess, database_url: str) -> None:
    key = conftest.mint_key(database_url, "hardening-big-body")
    padding = "p" * 300_000  # unknown keys are ignored; the body is far larger than the head cap
    with http_from(guarded.api, key) as c:
        r = c.post("/ip_connections", json={"connection_name": "big", "padding": padding})
        assert r.status_code == 201, r.text
        # Keep-alive still works after the timer was disarmed and re-armed.
        assert c.get(f"/ip_connections/{r.json()['data']['id']}").status_code == 200


SECRET_PASSWORD = "correct-horse-battery-9"


def _exercise_secrets(api: str, key: str) -> str:
    """Requests that carry every kind of secret; returns a guessed key that must not be logged either."""
    guess = f"KEY{uuid.uuid4().hex[:20].upper()}_{uuid.uuid4().hex}"
    with http_from(api, key) as c:
        made = c.post(
            "/credential_connections",
            json={
                "connection_name": "s",
                "user_name": f"u{uuid.uuid4().hex[:10]}",
                "password": SECRET_PASSWORD,
            },
        )
        assert made.status_code == 201, made.text
        c.patch(
            f"/credential_connections/{made.json()['data']['id']}", json={"password": SECRET_PASSWORD + "x"}
        )
        c.post("/credential_connections", json={"password": SECRET_PASSWORD})  # 422 must not echo it to logs
    with http_from(api, guess) as bad:
        assert bad.get("/ips").status_code == 401
    return guess


def _secrets(key: str, guess: str) -> list[str]:
    return [key, key.split("_", 1)[1], guess, guess.split("_", 1)[1], SECRET_PASSWORD]


def test_no_secret_reaches_the_log_of_serve(guarded: ServeProcess, database_url: str) -> None:
    key = conftest.mint_key(database_url, "hardening-logs")
    guess = _exercise_secrets(guarded.api, key)
    time.sleep(0.2)  # let the server flush its log lines
    log = guarded.log.read_text()
    assert '"key_id": "' + key.split("_")[0] in log.replace('":"', '": "')  # the log is there, with key ids
    for secret in _secrets(key, guess):
        assert secret not in log


def test_no_secret_reaches_any_log_record(
    database_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    live = LiveServer(conftest.test_settings(database_url, access_log=True)).start()
    try:
        key = conftest.mint_key(database_url, "hardening-caplog")
        guess = _exercise_secrets(live.api, key)
        time.sleep(0.2)
    finally:
        live.stop()
    formatter = JsonLogFormatter()
    # Only the server's records: the HTTP client libraries log requests (with headers) at DEBUG.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "telnyx"))]
    text = "\n".join(formatter.format(r) + repr(r.__dict__) for r in server_side)
    assert any(r.name == "trunkline.access" for r in server_side)
    for secret in _secrets(key, guess):
        assert secret not in text
