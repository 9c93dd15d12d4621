"""Webhook tests: a database of their own per backend, an API without a delivery worker (the tests run
theirs), real HTTP receivers on loopback, and calls written through the edge's importer."""

from __future__ import annotations

import asyncio
import base64
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
import telnyx

from tests.conftest import migrated_database, mint_key, test_settings
from tests.server import LiveServer
from tests.services import free_port
from trunkline.sip.state import CallEvent
from trunkline.store import call_ingest
from trunkline.store.db import Database
from trunkline.webhooks.worker import Worker


@dataclass
class Hit:
    at: float
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST and answers as `behave(path, n)` says:
    (status, seconds to wait first); n counts the requests to that path from 1. A request is in
    flight until it is answered or its client goes away (a worker that gave up or died), whichever
    comes first."""

    port: int = field(default_factory=free_port)
    behave: Callable[[str, int], tuple[int, float]] = lambda path, n: (200, 0.0)
    host: str = "127.0.0.1"
    hits: list[Hit] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    # monotonic times at which a request's client went away before it was answered
    abandoned: list[float] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        host = host or self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                event_id = _event_id(body)
                with receiver._lock:
                    n = 1 + sum(1 for h in receiver.hits if h.path == self.path)
                    receiver.in_flight[event_id] = receiver.in_flight.get(event_id, 0) + 1
                    receiver.most_in_flight[event_id] = max(
                        receiver.most_in_flight.get(event_id, 0), receiver.in_flight[event_id]
                    )
                    receiver.hits.append(
                        Hit(
                            time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                status, wait = receiver.behave(self.path, n)
                gone = _client_gone_within(self.connection, wait)
                with receiver._lock:
                    receiver.in_flight[event_id] -= 1
                    if gone:
                        receiver.abandoned.append(time.monotonic())
                if gone:
                    return
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the worker gave up waiting and closed the connection
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family})
        self._server = server_class((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


def _client_gone_within(sock: socket.socket, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client closes its end (it sends nothing more before our
    answer, so a readable socket with nothing to read is a closed one)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.05))
        if readable:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            time.sleep(min(left, 0.05))  # data we do not expect: keep waiting out the delay
    return False


def _event_id(body: str) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    return str((doc.get("data") or doc).get("id"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@dataclass
class Env:
    database_url: str
    api: str  # the /v2 URL of an API on this database

    def tenant(self) -> Tenant:
        user_id = f"user-{uuid.uuid4().hex[:10]}"
        key = mint_key(self.database_url, user_id)
        client = telnyx.Telnyx(api_key=key, base_url=self.api, max_retries=0)
        return Tenant(self, user_id, client)

    def db(self, work: Callable[..., Any]) -> Any:
        async def go() -> Any:
            db = Database(self.database_url)
            try:
                async with db.transaction(write=True) as conn:
                    return await work(conn)
            finally:
                await db.dispose()

        return asyncio.run(go())

    def events(self, **where: str) -> list[Any]:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
        stmt = sa.text(f"SELECT * FROM webhook_event WHERE {clause} ORDER BY created_at, seq").bindparams(
            **where
        )
        return self._rows(stmt)

    def _rows(self, stmt: Any) -> list[Any]:
        async def work(conn: Any) -> list[Any]:
            return list((await conn.execute(stmt)).all())

        return list(self.db(work))

    def attempts(self, event_id: str) -> list[Any]:
        stmt = sa.text("SELECT * FROM webhook_attempt WHERE event_id = :e ORDER BY attempt").bindparams(
            e=event_id
        )
        return self._rows(stmt)


@dataclass
class Tenant:
    env: Env
    user_id: str
    client: telnyx.Telnyx

    def connection(self, **fields: Any) -> str:
        """An IP connection with these (webhook) settings."""
        created = self.client.ip_connections.create(connection_name=f"pbx-{uuid.uuid4().hex[:6]}", **fields)
        return str(created.data.id)

    def call(
        self,
        connection_id: str,
        *,
        answered: bool = True,
        talk_ms: int = 61_000,
        rate: str | None = "0.01",
        refused: int | None = None,
        direction: str = "outbound",
    ) -> str:
        """One call through the edge's importer, as the edge spools it (sip/kamailio_app.py)."""
        record_id = str(uuid.uuid4())
        now = int(time.time() * 1000)
        start = {
            "user_id": self.user_id,
            "connection_id": connection_id,
            "call_session_id": str(uuid.uuid4()),
            "sip_call_id": f"{record_id}@pbx",
            "direction": direction,
            "cli": "+13125550100",
            "cld": "+12127363100",
            "destination_country": "US",
            "rate": rate,
        }
        if refused is not None:
            end = {"sip_status": refused, "sip_reason": "Forbidden", "d_code": "D13"}
            end |= {"hangup_cause": "call_rejected", "hangup_source": "callee"}
            log = [CallEvent(1, record_id, "start", now, start), CallEvent(2, record_id, "end", now, end)]
        else:
            end = {
                "sip_status": 200,
                "sip_reason": "OK",
                "hangup_cause": "normal_clearing",
                "hangup_source": "caller",
            }
            log = [CallEvent(1, record_id, "start", now, start)]
            if answered:
                log.append(CallEvent(2, record_id, "answer", now + 1000, {}))
            else:
                end = {**end, "sip_status": 487, "hangup_cause": "originator_cancel"}
            log.append(CallEvent(3, record_id, "end", now + 1000 + talk_ms, end))
        self.env.db(lambda conn: call_ingest.ingest(conn, log))
        return record_id


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with migrated_database(backend, tmp_path_factory) as url:
        server = LiveServer(test_settings(url, webhook_delivery=False)).start()
        try:
            yield Env(url, server.api)
        finally:
            server.stop()


def deliver(
    database_url: str,
    until: Callable[[], bool],
    *,
    timeout: float = 20.0,
    workers: int = 1,
    **options: Any,
) -> list[Worker]:
    """Run `workers` delivery workers (each on a Database of its own, as separate API instances
    have) until `until()` holds; fail at the timeout."""
    options.setdefault("poll_seconds", 0.02)
    options.setdefault("allow_private", True)  # the receivers are on loopback

    async def go() -> list[Worker]:
        dbs = [Database(database_url) for _ in range(workers)]
        running = [Worker(db, **options) for db in dbs]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in running]
        deadline = time.monotonic() + timeout
        try:
            while not await asyncio.to_thread(until):
                if time.monotonic() > deadline:
                    raise AssertionError(f"webhooks not delivered within {timeout} s")
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            for db in dbs:
                await db.dispose()
        return running

    return asyncio.run(go())


def signing_key(env: Env) -> str:
    async def read(conn: Any) -> str:
        return str((await conn.execute(sa.text("SELECT private_key FROM webhook_key"))).scalar())

    return str(env.db(read))


def public_key(env: Env) -> str:
    async def read(conn: Any) -> str:
        return str((await conn.execute(sa.text("SELECT public_key FROM webhook_key"))).scalar())

    return str(env.db(read))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll `check` every 20 ms until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return value
