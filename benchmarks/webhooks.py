"""Webhook delivery: events per second from the outbox to a fast local receiver, and a fast receiver's
latency while a slow receiver has a backlog (issue 11; docs/webhooks.md, "Delivery").

    .venv/bin/python -m benchmarks.webhooks                       # SQLite and PostgreSQL, ~2 minutes
    .venv/bin/python -m benchmarks.webhooks --engine sqlite --events 2000

Each engine gets a fresh database (SQLite: a file in a temporary directory; PostgreSQL: a scratch
database on --postgres, dropped at the end). One account has --urls IP connections (API v2), each
with a webhook URL of its own on one local receiver: an asyncio HTTP/1.1 server in a process of its
own that answers 200 at once (paths /fast/N) or after --slow-seconds (/slow), and notes when each
event arrived. Events are made as the edge makes them: refused calls (`call.initiated`, then
`call.hangup`) written through the edge's importer (store/call_ingest.py).

- **Throughput.** --events events are written first; then one, and then two, delivery workers start,
  each in a process of its own on its own database pool, as API instances run them (the shipped
  settings: 32 attempts in flight per process, 4 per URL). Events/s is counted from the receiver's
  first arrival to its last. The baseline, in the same run: the same bodies POSTed to the same
  receiver by httpx alone (32 at a time, no database, no signing), the ceiling of receiver and client.
- **Starvation.** One worker. For --fast-seconds, a refused call to a fast URL every 1/--fast-rate
  s; the figure is hangup → `call.hangup` arrived (the event's `created_at` to the receiver's clock,
  so it includes `call.initiated` going first): p50, p99, max. First alone (the baseline), then with
  --slow-backlog events already waiting for the slow URL, whose 4 slots stay busy throughout.

Everything it starts is stopped and every temporary file removed when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
import uvloop

from benchmarks._postgres import scratch_database
from trunkline.resources.connections import IP, service
from trunkline.sip.state import CallEvent
from trunkline.store import call_ingest, migrate
from trunkline.store.db import Conn, Database
from trunkline.store.schema import webhook_event
from trunkline.webhooks import signing
from trunkline.webhooks.worker import Worker, request_body

HOST = "127.0.0.1"
SPAWN = multiprocessing.get_context("spawn")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def run(coro: Any) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# -- the receiver (a process of its own) ----------------------------------------------------------


async def _receiver(port: int, slow_seconds: float) -> None:
    # What arrived since the last GET, which returns and clears it.
    hits: list[Hit] = []

    async def answer(writer: asyncio.StreamWriter, body: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if method == b"GET":
                    taken = hits[:]
                    hits.clear()
                    await answer(writer, orjson.dumps(taken))
                    continue
                at = time.time()
                data = orjson.loads(body)["data"]
                hits.append((path.decode(), data["id"], data["event_type"], at))
                if path.startswith(b"/slow"):
                    await asyncio.sleep(slow_seconds)
                await answer(writer, b"ok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


def receiver_process(port: int, slow_seconds: float) -> None:
    run(_receiver(port, slow_seconds))


Hit = tuple[str, str, str, float]  # path, event id, event type, time.time() on arrival


class Receiver:
    """The receiver process, and what has arrived there that this process has not yet taken."""

    def __init__(self, slow_seconds: float) -> None:
        self.port = free_port()
        self.proc = SPAWN.Process(target=receiver_process, args=(self.port, slow_seconds), daemon=True)
        self.proc.start()
        self.http = httpx.Client(base_url=f"http://{HOST}:{self.port}", timeout=10)
        self.buffer: list[Hit] = []
        deadline = time.monotonic() + 20
        while True:
            try:
                self.http.get("/count")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def count(self, prefix: str = "/") -> int:
        """Arrivals on paths starting with `prefix` (moved here from the receiver as they are read)."""
        self.buffer += [tuple(h) for h in self.http.get("/hits").json()]  # type: ignore[misc]
        return sum(1 for h in self.buffer if h[0].startswith(prefix))

    def take(self) -> list[Hit]:
        self.count()
        taken, self.buffer = self.buffer, []
        return taken

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc)


def stop_process(proc: SpawnProcess) -> None:
    if proc.is_alive():
        proc.terminate()  # our own child, by its pid
    proc.join(timeout=10)
    if proc.is_alive():
        proc.kill()
        proc.join()


# -- delivery workers (a process each, as API instances) -----------------------------------------


def worker_process(database_url: str, stop: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        db = Database(database_url)
        stopping = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            stopping.set()

        watcher = asyncio.create_task(watch())
        try:
            await Worker(db, allow_private=True).run(stopping)  # the receiver is on loopback
        finally:
            watcher.cancel()
            await db.dispose()

    run(main())


@contextlib.contextmanager
def workers(database_url: str, n: int) -> Iterator[None]:
    stop = SPAWN.Event()
    procs = [SPAWN.Process(target=worker_process, args=(database_url, stop), daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=15)
            stop_process(proc)


# -- the database ---------------------------------------------------------------------------------


@contextlib.contextmanager
def database(engine: str, postgres: str, tmp: Path) -> Iterator[str]:
    if engine == "sqlite":
        url = f"sqlite:///{tmp / 'webhooks.db'}"
        migrate.upgrade(url)
        yield url
        return
    with scratch_database(postgres, "trunkline_bench_webhooks") as url:
        migrate.upgrade(url)
        yield url


async def _in_transaction(database_url: str, work: Any) -> Any:
    db = Database(database_url)
    try:
        async with db.transaction(write=True) as conn:
            return await work(conn)
    finally:
        await db.dispose()


def connections(database_url: str, user_id: str, urls: list[str]) -> list[str]:
    async def work(conn: Conn) -> list[str]:
        await signing.server_public_key(conn)  # the key pair, made once before any worker starts
        made = []
        for i, url in enumerate(urls):
            body = {"connection_name": f"bench-{i}", "webhook_event_url": url, "webhook_api_version": "2"}
            made.append(str((await service.create(conn, user_id, IP, body, realm="bench"))["id"]))
        return made

    return list(run(_in_transaction(database_url, work)))


def refused_call(user_id: str, connection_id: str) -> list[CallEvent]:
    record_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    start = {
        "user_id": user_id,
        "connection_id": connection_id,
        "call_session_id": str(uuid.uuid4()),
        "sip_call_id": f"{record_id}@bench",
        "direction": "outbound",
        "cli": "+13125550100",
        "cld": "+12127363100",
        "destination_country": "US",
        "rate": "0.01",
    }
    end = {
        "sip_status": 403,
        "sip_reason": "Forbidden",
        "d_code": "D13",
        "hangup_cause": "call_rejected",
        "hangup_source": "callee",
    }
    return [CallEvent(1, record_id, "start", now, start), CallEvent(2, record_id, "end", now, end)]


def write_calls(database_url: str, user_id: str, connection_ids: list[str], calls: int) -> None:
    """`calls` refused calls (two events each), round-robin over the connections, 250 a transaction."""

    async def go() -> None:
        db = Database(database_url)
        try:
            done = 0
            while done < calls:
                batch = min(250, calls - done)
                log = [
                    e
                    for i in range(batch)
                    for e in refused_call(user_id, connection_ids[(done + i) % len(connection_ids)])
                ]
                async with db.transaction(write=True) as conn:
                    await call_ingest.ingest(conn, log)
                done += batch
        finally:
            await db.dispose()

    run(go())


def pending(database_url: str, user_id: str) -> int:
    async def work(conn: Conn) -> int:
        stmt = sa.select(sa.func.count()).where(
            webhook_event.c.user_id == user_id, webhook_event.c.status == "pending"
        )
        return int((await conn.execute(stmt)).scalar_one())

    return int(run(_in_transaction(database_url, work)))


def sample_body(database_url: str, user_id: str) -> bytes:
    async def work(conn: Conn) -> bytes:
        row = (
            (await conn.execute(sa.select(webhook_event).where(webhook_event.c.user_id == user_id).limit(1)))
            .mappings()
            .one()
        )
        return request_body(row, 1, str(row["url"]))

    return bytes(run(_in_transaction(database_url, work)))


# -- measures -------------------------------------------------------------------------------------


def wait_for(receiver: Receiver, n: int, timeout: float, prefix: str = "/") -> None:
    deadline = time.monotonic() + timeout
    while (seen := receiver.count(prefix)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {n} events arrived within {timeout:.0f} s")
        time.sleep(0.1)


def rate_of(hits: list[Hit]) -> float:
    times = sorted(h[3] for h in hits)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def throughput(
    database_url: str, receiver: Receiver, user_id: str, ids: list[str], events: int, n: int
) -> float:
    write_calls(database_url, user_id, ids, events // 2)
    receiver.take()
    with workers(database_url, n):
        wait_for(receiver, events, timeout=max(60.0, events / 20))
    hits = receiver.take()
    left = pending(database_url, user_id)
    distinct = len({h[1] for h in hits})
    if left or distinct != events:
        raise RuntimeError(f"{n} worker(s): {distinct} distinct of {events} events, {left} still pending")
    extra = len(hits) - distinct
    if extra:
        print(f"  note: {extra} duplicate deliveries (at least once)", flush=True)
    return rate_of(hits)


def baseline(receiver: Receiver, body: bytes, posts: int, concurrency: int = 32) -> float:
    async def go() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as http:
            left = posts
            url, headers = receiver.url("/fast/baseline"), {"content-type": "application/json"}

            async def one() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    (await http.post(url, content=body, headers=headers)).raise_for_status()

            await asyncio.gather(*(one() for _ in range(concurrency)))

    receiver.take()
    run(go())
    return rate_of(receiver.take())


def latencies(
    database_url: str, receiver: Receiver, user_id: str, ids: list[str], *, seconds: float, rate: float
) -> list[float]:
    """Hangup → call.hangup arrived, in ms, of the fast calls made during `seconds` at `rate`/s."""
    receiver.take()
    calls = int(seconds * rate)
    with workers(database_url, 1):
        write_calls(database_url, user_id, ids[:1], 1)  # a first call: the worker is up and polling
        wait_for(receiver, 2, timeout=60, prefix="/fast")
        receiver.take()
        start = time.monotonic()
        for i in range(calls):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            write_calls(database_url, user_id, [ids[i % len(ids)]], 1)
        wait_for(receiver, 2 * calls, timeout=60, prefix="/fast")
    hits = receiver.take()
    hangups = {h[1]: h[3] for h in hits if h[0].startswith("/fast") and h[2] == "call.hangup"}

    async def created(conn: Conn) -> dict[str, str]:
        stmt = sa.select(webhook_event.c.id, webhook_event.c.created_at).where(
            webhook_event.c.id.in_(list(hangups))
        )
        return {str(r.id): str(r.created_at) for r in (await conn.execute(stmt)).all()}

    stamps = run(_in_transaction(database_url, created))
    slow = sum(1 for h in hits if h[0] == "/slow")
    if slow:
        print(f"  meanwhile the slow URL got {slow} requests", flush=True)
    return [(at - stamp_seconds(stamps[event_id])) * 1000 for event_id, at in hangups.items()]


def stamp_seconds(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the run --------------------------------------------------------------------------------------


def bench_engine(
    engine: str, opts: argparse.Namespace, tmp: Path, rows: list[list[str]], latency_rows: list[list[str]]
) -> None:
    receiver = Receiver(opts.slow_seconds)
    try:
        with database(engine, opts.postgres, tmp) as url:
            user_id = f"bench-{uuid.uuid4().hex[:8]}"
            fast = connections(url, user_id, [receiver.url(f"/fast/{i}") for i in range(opts.urls)])
            (slow,) = connections(url, user_id, [receiver.url("/slow")])
            label = "SQLite" if engine == "sqlite" else "PostgreSQL"

            print(f"{label}: baseline, {opts.events} POSTs by httpx alone ...", flush=True)
            write_calls(url, user_id, fast, 1)
            body = sample_body(url, user_id)
            with workers(url, 1):
                wait_for(receiver, 2, timeout=30)
            ceiling = baseline(receiver, body, opts.events)
            rows.append([label, "httpx alone, 32 at a time", f"{ceiling:,.0f}", "1.00", ""])
            rates = {}
            for n in (1, 2):
                print(f"{label}: {opts.events} events, {n} worker(s) ...", flush=True)
                rates[n] = throughput(url, receiver, user_id, fast, opts.events, n)
                vs_one = f"{rates[n] / rates[1]:.2f}" if n > 1 else ""
                rows.append(
                    [
                        label,
                        f"outbox, {n} worker{'s' if n > 1 else ''}",
                        f"{rates[n]:,.0f}",
                        f"{rates[n] / ceiling:.2f}",
                        vs_one,
                    ]
                )

            print(
                f"{label}: fast calls alone, {opts.fast_seconds:g} s at {opts.fast_rate:g}/s ...", flush=True
            )
            alone = latencies(url, receiver, user_id, fast, seconds=opts.fast_seconds, rate=opts.fast_rate)
            print(
                f"{label}: the same beside {opts.slow_backlog} events waiting for the slow URL ...",
                flush=True,
            )
            write_calls(url, user_id, [slow], opts.slow_backlog // 2)
            beside = latencies(url, receiver, user_id, fast, seconds=opts.fast_seconds, rate=opts.fast_rate)
            for name, values in (("alone", alone), (f"beside {opts.slow_backlog} slow", beside)):
                latency_rows.append(
                    [
                        label,
                        name,
                        f"{len(values)}",
                        f"{pct(values, 0.5):.0f}",
                        f"{pct(values, 0.99):.0f}",
                        f"{max(values):.0f}",
                    ]
                )
            latency_rows.append(
                [
                    label,
                    "beside ÷ alone",
                    "",
                    f"{pct(beside, 0.5) / pct(alone, 0.5):.2f}",
                    f"{pct(beside, 0.99) / pct(alone, 0.99):.2f}",
                    "",
                ]
            )
    finally:
        receiver.stop()


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432", help="server, no database")
    p.add_argument("--events", type=int, default=4000, help="events per throughput run (4000)")
    p.add_argument("--urls", type=int, default=16, help="fast webhook URLs (connections), 16")
    p.add_argument("--slow-seconds", type=float, default=2.0, help="the slow receiver's delay (2)")
    p.add_argument("--slow-backlog", type=int, default=200, help="events waiting for the slow URL (200)")
    p.add_argument("--fast-seconds", type=float, default=10.0, help="how long fast calls are made (10)")
    p.add_argument("--fast-rate", type=float, default=20.0, help="fast calls per second (20)")
    opts = p.parse_args(argv)
    load = os.getloadavg()[0]
    rows: list[list[str]] = []
    latency_rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="trunkline-bench-webhooks-") as tmp_name:
        for engine in ("sqlite", "postgresql") if opts.engine == "both" else (opts.engine,):
            bench_engine(engine, opts, Path(tmp_name), rows, latency_rows)
    print()
    table(["engine", "delivery", "events/s", "÷ httpx alone", "÷ 1 worker"], rows)
    print()
    table(["engine", "fast calls", "hangups", "p50 ms", "p99 ms", "max ms"], latency_rows)
    print(
        f"\n{os.cpu_count()} CPUs, load average {load:.2f} before the run; {opts.urls} fast URLs;"
        f" slow URL {opts.slow_seconds:g} s per request; fast calls {opts.fast_rate:g}/s for"
        f" {opts.fast_seconds:g} s; worker defaults (32 in flight, 4 per URL, poll 0.2 s)"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
