"""A client that sends its body slowly holds nothing the other clients need.

Each slow client sends a valid, authenticated POST head and then one byte of its body, and keeps the
connection open. Meanwhile other clients' reads and writes must answer as fast as they do without it:
the transaction (the SQLite write lock, a PostgreSQL pool slot) begins only once a body has arrived
(http/deps.py, `get_conn`).
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Account
from tests.server import LiveServer

# PostgreSQL's pool holds 20 connections (store/db.py): 50 slow clients are more than it has.
SLOW_CLIENTS = [1, 50]


def _slow_post(server: LiveServer, key: str) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    body = b'{"ip_address": "192.0.2.200"}'
    head = (
        "POST /v2/ips HTTP/1.1\r\n"
        f"Host: {server.host}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:1])
    return sock


def _latencies(http: httpx.Client, rounds: int = 10) -> list[float]:
    """Seconds for each of `rounds` reads plus writes."""
    took = []
    for i in range(rounds):
        start = time.perf_counter()
        assert http.get("/ips").status_code == 200
        name = f"while-slow-{i}-{uuid.uuid4().hex[:6]}"
        assert http.post("/ip_connections", json={"connection_name": name}).status_code == 201
        took.append(time.perf_counter() - start)
    return took


@pytest.mark.parametrize("count", SLOW_CLIENTS)
def test_slow_bodies_do_not_hold_up_other_clients(
    server: LiveServer, new_account: Callable[..., Account], count: int
) -> None:
    slow, other = new_account(), new_account()
    # A read and a write by another account; a request held up would wait for the client's timeout.
    with httpx.Client(
        base_url=server.api, headers={"Authorization": f"Bearer {other.key}"}, timeout=3
    ) as http:
        normal = statistics.median(_latencies(http))
        socks = [_slow_post(server, slow.key) for _ in range(count)]
        try:
            time.sleep(0.3)  # the server has read every head and waits for the bodies
            took = _latencies(http)
        finally:
            for sock in socks:
                sock.close()
    median = statistics.median(took)
    print(f"{count} slow clients: median read+write {median * 1000:.1f} ms (without: {normal * 1000:.1f} ms)")
    assert max(took) < 1.0, f"with {count} slow clients a read+write took up to {max(took):.3f} s"
    assert median < max(3 * normal, normal + 0.05), (median, normal)
