"""sip.call_log: the edge's spool keeps every event until the importer took it, whatever fails."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from trunkline.sip import call_log
from trunkline.sip.state import CallEvent


def test_events_survive_an_importer_that_fails_until_it_works(tmp_path: Path) -> None:
    spool = tmp_path / call_log.SPOOL_FILE
    writer = call_log.Writer(spool)
    for i in range(5):
        writer.write((f"r{i}", "start", 1000 + i, {"n": i}))
    taken: list[CallEvent] = []
    attempts = 0

    async def ingest(events: list[CallEvent]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("the database is away")
        taken.extend(events)
        stop.set()

    stop = asyncio.Event()

    async def run() -> None:
        await asyncio.wait_for(call_log.pump(call_log.Reader(spool), ingest, stop, poll_seconds=0.01), 60)

    asyncio.run(run())
    assert [e.record_id for e in taken] == [f"r{i}" for i in range(5)]
    assert attempts == 3
    assert call_log.Reader(spool).pending() == 0


def test_writers_in_parallel_lose_nothing(tmp_path: Path) -> None:
    spool = tmp_path / call_log.SPOOL_FILE
    call_log.Reader(spool).pending()  # creates the file, as the importer does at start

    def write(worker: int) -> None:
        writer = call_log.Writer(spool)  # one per Kamailio worker process
        for i in range(200):
            writer.write((f"w{worker}-{i}", "start", i, {}), (f"w{worker}-{i}", "end", i, {}))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = call_log.Reader(spool).batch(limit=10_000)
    assert len(events) == 4 * 200 * 2
    assert len({(e.record_id, e.kind) for e in events}) == len(events)
