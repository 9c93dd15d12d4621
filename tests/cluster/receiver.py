"""A webhook receiver on a host of the topology: records every POST with the address it came from.

Modelled on tests/webhooks/conftest.py's Receiver, plus what several hosts make visible: which host
delivered each attempt (the peer address). Its listening socket is made inside the host's namespace
(Host.call), so API hosts reach it on that host's address, like any other machine on the subnet.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.cluster.hosts import Host


@dataclass
class Attempt:
    """One POST: who sent it, when it arrived (monotonic), and how it ended."""

    peer: str
    at: float
    path: str
    headers: dict[str, str]
    body: str
    status: int | None = None  # what the receiver answered; None while in flight or when abandoned
    abandoned_at: float | None = None  # when its client went away before the answer

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        doc = self.json
        return str((doc.get("data") or doc).get("id"))


# (the attempt) -> (status to answer, seconds to wait first)
Behaviour = Callable[[Attempt], tuple[int, float]]


@dataclass
class HookReceiver:
    host: Host
    port: int = 8080
    behave: Behaviour = lambda attempt: (200, 0.0)
    attempts: list[Attempt] = field(default_factory=list)
    # per event id: attempts in flight now, and the most there ever were at once
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host.ip}:{self.port}{path}"

    def start(self) -> HookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                attempt = Attempt(self.client_address[0], time.monotonic(), self.path, headers, body)
                receiver._began(attempt)
                status, wait = receiver.behave(attempt)
                gone = _client_gone_within(self.connection, wait)
                receiver._ended(attempt, None if gone else status)
                if gone:
                    return
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up as we answered
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        def listen() -> ThreadingHTTPServer:
            server = ThreadingHTTPServer((self.host.ip, self.port), Handler)
            server.daemon_threads = True
            return server

        self._server = self.host.call(listen)
        threading.Thread(
            target=self._server.serve_forever, name=f"hooks-{self.host.name}", daemon=True
        ).start()
        return self

    def _began(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)
            event = attempt.event_id
            self.in_flight[event] = self.in_flight.get(event, 0) + 1
            self.most_in_flight[event] = max(self.most_in_flight.get(event, 0), self.in_flight[event])

    def _ended(self, attempt: Attempt, status: int | None) -> None:
        with self._lock:
            self.in_flight[attempt.event_id] -= 1
            attempt.status = status
            if status is None:
                attempt.abandoned_at = time.monotonic()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def snapshot(self) -> list[Attempt]:
        with self._lock:
            return list(self.attempts)

    def held_from(self, peer: str) -> list[Attempt]:
        """Attempts from `peer` still waiting for their answer."""
        return [a for a in self.snapshot() if a.peer == peer and a.status is None and a.abandoned_at is None]


def _client_gone_within(sock: socket.socket, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client closes its end. It sends nothing more before the
    answer, so a readable socket with nothing to read is a closed one (tests/webhooks/conftest.py)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.05))
        if readable:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            time.sleep(min(left, 0.05))
    return False
