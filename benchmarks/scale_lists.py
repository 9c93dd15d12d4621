"""Scale benchmark of the other list endpoints: IPs, FQDNs, outbound voice profiles and access IP ranges.

The companion of benchmarks/scale.py (whose server, scratch database, scenario loop and summary it
imports): one account holds N rows of each of the four tables, seeded directly through the store's
tables (sqlite3 executemany, asyncpg COPY, in batches; through the API a million would take hours),
growing one database from size to size. At each size every list scenario (a plain page, the deepest
page up to 10,000, each filter at about 10% of the rows and at one row where the filter allows it,
each sort) runs with wrk at 32 connections.

    python benchmarks/scale_lists.py                               # SQLite, 10,000 and 100,000
    python benchmarks/scale_lists.py --engine postgresql           # a scratch database, dropped after
    python benchmarks/scale_lists.py --engine both --sizes 1000000 --duration 3

One row of each table is made through the API and its stored columns are the template of the seeded
rows, so the account holds exactly N of each; `meta.total_results` of each unfiltered list is checked
against N before the timing.

- IPs: `10.a.b.c` (the row number in the last three octets), a tenth on each of ten IP connections,
  a tenth on port 5080, the rest on 5060; the template (192.0.2.1:5999) is alone on an eleventh.
- FQDNs: `sip-NNNNNNN.example.net`, a tenth on each of ten FQDN connections; a tenth are SRV records
  (no port), a tenth A records on port 5080; the template (port 5999) is alone on an eleventh.
- Outbound voice profiles: `sales-NNNNNNN` for every tenth, `office-NNNNNNN` otherwise; a third disabled.
- Access IP ranges: `(10 + n % 10).a.b.c/32`, already `added`; the template is 127.0.0.0/8, the range
  the benchmark's own requests come from (an account with ranges admits no other address).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.api`

from benchmarks.api import Api, Options, Result, Scenario, print_table, wrk_version
from benchmarks.scale import (
    BATCH,
    DEEP_PAGE,
    PAGE_SIZE,
    RARE,
    Server,
    any_errors,
    cell,
    command_line,
    measure,
    progress,
    run_engines,
    serving,
    stamp,
)

TABLES = ("ip", "fqdn", "outbound_voice_profile", "access_ip_range")
PATHS = {
    "ip": "/v2/ips",
    "fqdn": "/v2/fqdns",
    "outbound_voice_profile": "/v2/outbound_voice_profiles",
    "access_ip_range": "/v2/access_ip_ranges",
}
PREFIX = {"ip": "ips", "fqdn": "fqdns", "outbound_voice_profile": "profiles", "access_ip_range": "ranges"}
SPREAD = 10  # connections the seeded IPs and FQDNs are spread over: a tenth each
TEMPLATE_PORT = 5999  # only the template IP and FQDN use it
TENTH_PORT = 5080
RARE_ROW = 777  # present at every size from 778 on, as scale.py's RARE name
SLOW_P99_MS = 50.0
GROWTH_LIMIT = 2.0


@dataclass
class Fixture:
    """What the API made before seeding: the connections the rows hang on, and each table's template."""

    ip_connections: list[str]
    fqdn_connections: list[str]
    lone_ip_connection: str
    lone_fqdn_connection: str
    templates: dict[str, dict[str, Any]]


def address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def cidr(i: int) -> str:
    # The first octet spreads the blocks over ten prefixes (a tenth start with "10."); the last three
    # hold the row number, so a suffix of them names one block.
    return f"{10 + i % 10}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32"


def make_fixture(api: Api, server: Server) -> Fixture:
    def connections(kind: str) -> list[str]:
        path = f"/v2/{kind}_connections"
        return [api.create(path, {"connection_name": f"lists-{kind}-{c}"})["id"] for c in range(SPREAD + 1)]

    ips, fqdns = connections("ip"), connections("fqdn")
    made = {
        "ip": api.create(
            "/v2/ips", {"connection_id": ips[-1], "ip_address": "192.0.2.1", "port": TEMPLATE_PORT}
        ),
        "fqdn": api.create(
            "/v2/fqdns",
            {
                "connection_id": fqdns[-1],
                "fqdn": "template.example.org",
                "dns_record_type": "a",
                "port": TEMPLATE_PORT,
            },
        ),
        "outbound_voice_profile": api.create("/v2/outbound_voice_profiles", {"name": "lists-template"}),
        "access_ip_range": api.create("/v2/access_ip_ranges", {"cidr_block": "127.0.0.0/8"}),
    }
    templates = {table: read_row(server.url, table, doc["id"]) for table, doc in made.items()}
    return Fixture(ips[:SPREAD], fqdns[:SPREAD], ips[-1], fqdns[-1], templates)


def read_row(database_url: str, table: str, id: str) -> dict[str, Any]:
    """A row as the store wrote it: every column, in the table's order."""
    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.split("///", 1)[1])
        db.row_factory = sqlite3.Row
        row = db.execute(f"SELECT * FROM {table} WHERE id = ?", (id,)).fetchone()
        db.close()
        return dict(row)
    import asyncpg

    async def go() -> dict[str, Any]:
        conn = await asyncpg.connect(database_url)
        try:
            return dict(await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1", id))
        finally:
            await conn.close()

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------------
# Rows: the template's columns with what differs per row


def generators(fx: Fixture) -> dict[str, Callable[[int], dict[str, Any]]]:
    import orjson

    from trunkline.store.ids import Snowflake

    make_id = Snowflake(node=1022)  # a node neither the servers of the run nor scale.py use
    profile_doc = orjson.loads(fx.templates["outbound_voice_profile"]["document"])

    def ip(i: int) -> dict[str, Any]:
        created = stamp(i)
        return {
            "id": str(uuid.uuid4()),  # IPs get UUIDs, as the API's (store/ids.py)
            "connection_id": fx.ip_connections[i % SPREAD],
            "ip_address": address(i),
            "port": TENTH_PORT if i // SPREAD % 10 == 0 else 5060,
            "created_at": created,
            "updated_at": created,
        }

    def fqdn(i: int) -> dict[str, Any]:
        created, share = stamp(i), i // SPREAD % 10
        return {
            "id": make_id.next(),
            "connection_id": fx.fqdn_connections[i % SPREAD],
            "fqdn": f"sip-{i:07d}.example.net",
            "dns_record_type": "srv" if share == 3 else "a",
            "port": None if share == 3 else TENTH_PORT if share == 0 else 5060,
            "created_at": created,
            "updated_at": created,
        }

    def profile(i: int) -> dict[str, Any]:
        created, ident = stamp(i), make_id.next()
        name = f"{'sales' if i % 10 == 0 else 'office'}-{i:07d}"
        doc = {**profile_doc, "id": ident, "name": name, "enabled": i % 3 != 0}
        doc.update(created_at=created, updated_at=created)
        return {
            "id": ident,
            "name": name,
            "enabled": i % 3 != 0,
            "document": orjson.dumps(doc).decode(),
            "created_at": created,
            "updated_at": created,
        }

    def access_range(i: int) -> dict[str, Any]:
        created = stamp(i)
        # `added`: what the access gate makes of a range once it has loaded it, as it will these.
        return {
            "id": make_id.next(),
            "cidr_block": cidr(i),
            "status": "added",
            "created_at": created,
            "updated_at": created,
        }

    return {"ip": ip, "fqdn": fqdn, "outbound_voice_profile": profile, "access_ip_range": access_range}


def rows(
    table: str, start: int, stop: int, fx: Fixture, make: Callable[[int], dict[str, Any]]
) -> Iterator[tuple]:
    template = fx.templates[table]
    for i in range(start, stop):
        row = {**template, **make(i)}
        yield tuple(row.values())


def seed_sqlite(path: str, table: str, start: int, stop: int, fx: Fixture, make: Callable) -> None:
    columns = list(fx.templates[table])
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    started, done, it = time.monotonic(), start, rows(table, start, stop, fx, make)
    while done < stop:
        batch = [next(it) for _ in range(min(BATCH, stop - done))]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, batch)  # the triggers (account_row_count, trigram table) fire per row
        db.execute("COMMIT")
        done += len(batch)
        progress(done, stop, started, start, f"{table} rows")
    db.close()


async def seed_postgres(url: str, table: str, start: int, stop: int, fx: Fixture, make: Callable) -> None:
    import asyncpg

    columns = list(fx.templates[table])
    conn = await asyncpg.connect(url)
    try:
        started, done, it = time.monotonic(), start, rows(table, start, stop, fx, make)
        while done < stop:
            batch = [next(it) for _ in range(min(BATCH * 5, stop - done))]
            # COPY fires the statement-level insert trigger that keeps account_row_count.
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            done += len(batch)
            progress(done, stop, started, start, f"{table} rows")
        # What autovacuum would do soon after such a load: statistics and the visibility map.
        await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


def announce_ranges(url: str) -> None:
    """Bump the access ranges' change counter as the store's insert does (store/changes.py), so the
    servers' access gates load the seeded ranges, as they would after a restart."""
    from trunkline.store.ids import now

    upsert = (
        "INSERT INTO config_version (topic, version, updated_at) VALUES ('access_ip_range', 1, {p})"
        " ON CONFLICT (topic) DO UPDATE SET version = config_version.version + 1,"
        " updated_at = excluded.updated_at"
    )
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.split("///", 1)[1], timeout=60, isolation_level=None)
        db.execute(upsert.format(p="?"), (now(),))
        db.close()
        return
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(upsert.format(p="$1"), now())
                await conn.execute("SELECT pg_notify('trunkline_changes', 'access_ip_range')")
        finally:
            await conn.close()

    asyncio.run(go())


def server_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by every process of the server's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def settle(server: Server, *, first: float, timeout: float = 180) -> float:
    """Wait `first` seconds, then until the server uses under 5% of a CPU for a second; returns the
    seconds waited. The access gate's reload of every range blocks each worker while it parses them."""
    t0 = time.monotonic()
    time.sleep(first)
    last = server_cpu_seconds(server.proc.pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(1)
        used = server_cpu_seconds(server.proc.pid)
        if used - last < 0.05:
            break
        last = used
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------------
# Scenarios


def q(path: str, **params: str) -> str:
    return f"{path}?" + urllib.parse.urlencode({"page[size]": str(PAGE_SIZE), **params}, safe="")


def deep_page(size: int) -> int:
    return min(DEEP_PAGE, math.ceil(size / PAGE_SIZE))


def scenarios(size: int, fx: Fixture) -> list[Scenario]:
    """Names are the same at every size, so the summary lines them up (the deepest page's number is
    printed beside the tables)."""
    deep = {"page[number]": str(deep_page(size))}
    rare = RARE_ROW  # a seeded row present at every size
    ip, fq, ovp, air = (PATHS[t] for t in TABLES)
    tenth_stamp = stamp(size - size // 10)  # the newest tenth of the seeded rows (and the template)

    def s(table: str, name: str, path: str) -> Scenario:
        return Scenario(f"{PREFIX[table]}: {name}", "GET", [path])

    return [
        s("ip", "plain page", q(ip)),
        s("ip", "deepest page", q(ip, **deep)),
        s("ip", "connection_id (10%)", q(ip, **{"filter[connection_id]": fx.ip_connections[1]})),
        s("ip", "connection_id (1 row)", q(ip, **{"filter[connection_id]": fx.lone_ip_connection})),
        s("ip", "ip_address (1 row)", q(ip, **{"filter[ip_address]": address(rare)})),
        s("ip", f"port={TENTH_PORT} (10%)", q(ip, **{"filter[port]": str(TENTH_PORT)})),
        s("ip", f"port={TEMPLATE_PORT} (1 row)", q(ip, **{"filter[port]": str(TEMPLATE_PORT)})),
        s("fqdn", "plain page", q(fq)),
        s("fqdn", "deepest page", q(fq, **deep)),
        s("fqdn", "connection_id (10%)", q(fq, **{"filter[connection_id]": fx.fqdn_connections[1]})),
        s("fqdn", "connection_id (1 row)", q(fq, **{"filter[connection_id]": fx.lone_fqdn_connection})),
        s("fqdn", "fqdn (1 row)", q(fq, **{"filter[fqdn]": f"sip-{rare:07d}.example.net"})),
        s("fqdn", f"port={TENTH_PORT} (10%)", q(fq, **{"filter[port]": str(TENTH_PORT)})),
        s("fqdn", f"port={TEMPLATE_PORT} (1 row)", q(fq, **{"filter[port]": str(TEMPLATE_PORT)})),
        s("fqdn", "dns_record_type=srv (10%)", q(fq, **{"filter[dns_record_type]": "srv"})),
        s("outbound_voice_profile", "plain page", q(ovp)),
        s("outbound_voice_profile", "deepest page", q(ovp, **deep)),
        s("outbound_voice_profile", "contains=sales (10%)", q(ovp, **{"filter[name][contains]": "sales"})),
        s("outbound_voice_profile", f"contains={RARE} (1 row)", q(ovp, **{"filter[name][contains]": RARE})),
        *(
            s("outbound_voice_profile", f"sort={key}", q(ovp, sort=key))
            for key in (
                "created_at",
                "name",
                "-name",
                "enabled",
                "-enabled",
                "service_plan",
                "traffic_type",
                "usage_payment_method",
            )
        ),
        s("access_ip_range", "plain page", q(air)),
        s("access_ip_range", "deepest page", q(air, **deep)),
        s("access_ip_range", "cidr_block (1 row)", q(air, **{"filter[cidr_block]": cidr(rare)})),
        s("access_ip_range", "startswith=10. (10%)", q(air, **{"filter[cidr_block][startswith]": "10."})),
        s(
            "access_ip_range",
            "startswith (1 row)",
            q(air, **{"filter[cidr_block][startswith]": cidr(rare).replace("/32", "/")}),
        ),
        s(
            "access_ip_range",
            "endswith (1 row)",
            q(air, **{"filter[cidr_block][endswith]": "." + cidr(rare).split(".", 1)[1]}),
        ),
        s("access_ip_range", "contains=10. (~10%)", q(air, **{"filter[cidr_block][contains]": "10."})),
        s(
            "access_ip_range",
            "contains (1 row)",
            q(air, **{"filter[cidr_block][contains]": "." + cidr(rare).split(".", 1)[1].replace("/32", "/")}),
        ),
        s("access_ip_range", "created_at= (1 row)", q(air, **{"filter[created_at]": stamp(rare)})),
        s("access_ip_range", "created_at[gte] (10%)", q(air, **{"filter[created_at][gte]": tenth_stamp})),
    ]


def check_totals(server: Server, size: int, chosen: list[Scenario]) -> None:
    """Each unfiltered list's `meta.total_results` must be the size (the counters the triggers keep
    saw every seeded row); the matches of each scenario are printed for the record."""
    api = Api(server.port, server.key)
    try:
        for table in TABLES:
            status, doc = api.call("GET", q(PATHS[table], **{"page[size]": "1"}))
            total = doc.get("meta", {}).get("total_results") if status == 200 else None
            ok = "ok" if total == size else "MISMATCH"
            print(f"  {PATHS[table]}: meta.total_results {total} (expected {size:,}) {ok}", flush=True)
            if total != size:
                raise SystemExit(f"{PATHS[table]} answered {status}: {str(doc)[:500]}")
        for sc in chosen:
            status, doc = api.call("GET", sc.paths[0])
            if status != 200:
                raise SystemExit(f"{sc.name}: {sc.paths[0]} answered {status}: {str(doc)[:500]}")
            print(f"    {sc.name}: {doc['meta']['total_results']:,} matches", flush=True)
    finally:
        api.close()


# ---------------------------------------------------------------------------------------------------
# Runs


def run_engine(
    engine: str, sizes: list[int], opts: Options, tmp: Path, server_url: str
) -> dict[int, list[Result]]:
    out: dict[int, list[Result]] = {}
    print(f"{engine}: load average before {load()}", flush=True)
    with serving(engine, opts, tmp, server_url, name="scale_lists") as srv:
        api = Api(srv.port, srv.key)
        try:
            fx = make_fixture(api, srv)
        finally:
            api.close()
        makers = generators(fx)
        have = 1  # row 0 of each table is its template, made through the API
        for size in sizes:
            print(f"{engine}: seeding to {size:,} rows of each table", flush=True)
            t0 = time.monotonic()
            for table in TABLES:
                if engine == "sqlite":
                    seed_sqlite(srv.url.split("///", 1)[1], table, have, size, fx, makers[table])
                else:
                    asyncio.run(seed_postgres(srv.url, table, have, size, fx, makers[table]))
            print(f"  in {time.monotonic() - t0:.1f} s", flush=True)
            have = size
            announce_ranges(srv.url)
            waited = settle(srv, first=3)
            print(
                f"  the access gates reloaded the ranges; the server was busy for {waited:.1f} s", flush=True
            )
            chosen = [
                sc
                for sc in scenarios(size, fx)
                if not opts.only or any(o.lower() in sc.name.lower() for o in opts.only)
            ]
            check_totals(srv, size, chosen)
            print(f"  load average {load()}; deepest page {deep_page(size):,}", flush=True)
            out[size] = measure(srv, chosen, opts, tmp)
            print()
            print(f"{engine}, {size:,} rows of each table in the account (deepest page {deep_page(size):,}):")
            print_table(out[size])
            print(flush=True)
    print(f"{engine}: load average after {load()}", flush=True)
    return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def growth(small: Result, large: Result) -> float | None:
    if small.requests == 0 or large.requests == 0 or small.p99_ms <= 0:
        return None
    return large.p99_ms / small.p99_ms


def summary(engine: str, by_size: dict[int, list[Result]]) -> list[str]:
    """scale.py's table with a growth column (p99 at the largest size / at the smallest); returns the
    findings: a p99 over 50 ms at the largest size, or one that grew more than twofold."""
    sizes = sorted(by_size)
    findings = []
    print(f"| {engine} | " + " | ".join(f"{s:,}: req/s  p50  p99 ms" for s in sizes) + " | p99 growth |")
    print("| --- |" + " ---: |" * (len(sizes) + 1))
    for n, r in enumerate(by_size[sizes[0]]):
        small, large = r, by_size[sizes[-1]][n]
        ratio = growth(small, large) if len(sizes) > 1 else None
        shown = f"{ratio:.1f}x" if ratio is not None else "-"
        print(f"| {r.name} | " + " | ".join(cell(by_size[s][n]) for s in sizes) + f" | {shown} |")
        why = []
        if large.requests == 0 or large.p99_ms > SLOW_P99_MS:
            p99 = "none answered" if large.requests == 0 else f"{large.p99_ms:,.1f} ms"
            why.append(f"p99 {p99} at {sizes[-1]:,}")
        if ratio is not None and ratio > GROWTH_LIMIT:
            why.append(f"p99 grew {ratio:.1f}x from {sizes[0]:,}")
        if why:
            findings.append(f"{engine} {r.name}: " + ", ".join(why))
    return findings


def main(argv: list[str] | None = None) -> int:
    cl = command_line(
        argv, description=__doc__ or "", sizes_help="comma-separated rows per table, grown in turn"
    )
    a, sizes = cl.args, cl.sizes
    if sizes[0] < RARE_ROW + 1:
        cl.parser.error(f"sizes start at {RARE_ROW + 1}: the one-row filters name row {RARE_ROW}")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = run_engines(cl, run_engine, "trunkline-scale-lists-")
    if results is None:
        return 130
    print(f"trunkline serve --workers {a.workers}; {a.connections} connections, wrk ({wrk_version()}), "
          f"{a.duration:g} s per scenario after {a.warmup:g} s warm-up; page[size]={PAGE_SIZE}; "
          f"{os.cpu_count()} CPUs; started {started}, load average now {load()}; "
          f"cells: req/s / p50 ms / p99 ms")  # fmt: skip
    print("deepest page: " + ", ".join(f"{deep_page(s):,} at {s:,}" for s in sizes))
    findings = []
    for engine, by_size in results.items():
        print()
        findings += summary(engine, by_size)
    print()
    print(
        f"findings (p99 over {SLOW_P99_MS:g} ms at the largest size, or grown more than {GROWTH_LIMIT:g}x):"
    )
    for line in findings or ["none"]:
        print(f"  {line}")
    return 1 if any_errors(results) else 0


if __name__ == "__main__":
    sys.exit(main())
