"""Scale benchmark of the list endpoints: one account with 10,000 / 100,000 / 1,000,000 connections.

Seeds connections into one account directly through the store's tables (sqlite3 executemany,
asyncpg COPY; through the API a million would take hours), growing one database from size to size,
and at each size drives every list scenario (a plain page, the deepest page up to 10,000, each filter,
each sort) with wrk at 32 connections, reusing benchmarks/api.py's server and load-generator code.

    python benchmarks/scale.py                                     # SQLite, 10,000 and 100,000
    python benchmarks/scale.py --engine postgresql                 # a scratch database, dropped after
    python benchmarks/scale.py --engine both --sizes 10000,100000,1000000

Names are `sales-NNNNNNN` for every tenth connection and `office-NNNNNNN` otherwise; kinds are 80%
credential, 10% IP, 10% FQDN; every hundredth has one of three outbound voice profiles; a few FQDN
connections made through the API carry FQDN records.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `benchmarks.api`

from benchmarks._postgres import scratch_database as postgres_scratch
from benchmarks.api import (
    HOST,
    Api,
    Options,
    Result,
    Scenario,
    create_key,
    drive,
    free_port,
    print_table,
    process_group,
    trunkline_cmd,
    wait_http,
    wrk_version,
)

COLUMNS = (
    "id",
    "user_id",
    "kind",
    "connection_name",
    "active",
    "outbound_voice_profile_id",
    "user_name",
    "user_name_key",
    "document",
    "created_at",
    "updated_at",
)
KINDS = ["credential"] * 8 + ["ip", "fqdn"]
RECORD_TYPES = {"credential": "credential_connection", "ip": "ip_connection", "fqdn": "fqdn_connection"}
BATCH = 20_000
PAGE_SIZE = 20
DEEP_PAGE = 10_000
RARE = "0000777"  # in exactly one name at every size from 778 on


@dataclass
class Fixture:
    """What the API made before seeding: ids the scenarios filter on, the document to copy."""

    profiles: list[str]
    fqdn: str
    template: dict[str, Any]


def stamp(i: int) -> str:
    seconds, ms = divmod(i, 1000)
    t = time.gmtime(1_735_689_600 + seconds)  # 2025-01-01T00:00:00Z, a millisecond per connection
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms:03d}Z"


def rows(start: int, stop: int, user_id: str, run: str, fx: Fixture) -> Iterator[tuple[Any, ...]]:
    import orjson

    from trunkline.store.ids import Snowflake

    make_id = Snowflake(node=1023)  # a node no server of the run uses
    for i in range(start, stop):
        kind = KINDS[i % 10]
        name = f"{'sales' if i % 10 == 0 else 'office'}-{i:07d}"
        created = stamp(i)
        ident = make_id.next()
        profile = fx.profiles[i // 100 % 3] if i % 100 == 0 else None
        user_name = f"sc{run}{i}" if kind == "credential" else None
        doc = dict(fx.template)
        doc.update(
            id=ident,
            record_type=RECORD_TYPES[kind],
            connection_name=name,
            active=i % 3 != 0,
            created_at=created,
            updated_at=created,
        )
        if user_name is not None:
            doc["user_name"] = user_name
        doc["outbound"] = {**(doc.get("outbound") or {}), "outbound_voice_profile_id": profile}
        yield (
            ident,
            user_id,
            kind,
            name,
            i % 3 != 0,
            profile,
            user_name,
            user_name,
            orjson.dumps(doc).decode(),
            created,
            created,
        )


def progress(done: int, total: int, started: float, first: int, noun: str = "connections") -> None:
    rate = (done - first) / max(time.monotonic() - started, 1e-9)
    end = "\n" if done >= total else ""
    print(f"\r  seeded {done:,} / {total:,} {noun} ({rate:,.0f}/s)", end=end, flush=True)


def seed_sqlite(path: str, start: int, stop: int, user_id: str, run: str, fx: Fixture) -> None:
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    sql = f"INSERT INTO connection ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    started, done, it = time.monotonic(), start, rows(start, stop, user_id, run, fx)
    while done < stop:
        batch = [next(it) for _ in range(min(BATCH, stop - done))]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, batch)
        db.execute("COMMIT")
        done += len(batch)
        progress(done, stop, started, start)
    db.close()


async def seed_postgres(url: str, start: int, stop: int, user_id: str, run: str, fx: Fixture) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        started, done, it = time.monotonic(), start, rows(start, stop, user_id, run, fx)
        while done < stop:
            batch = [next(it) for _ in range(min(BATCH * 5, stop - done))]
            await conn.copy_records_to_table("connection", records=batch, columns=COLUMNS)
            done += len(batch)
            progress(done, stop, started, start)
        # What autovacuum would do soon after such a load: statistics and the visibility map.
        await conn.execute("VACUUM ANALYZE connection")
    finally:
        await conn.close()


def make_fixture(api: Api, database_url: str, user_id: str) -> Fixture:
    profiles = [api.create("/v2/outbound_voice_profiles", {"name": f"scale-{p}"})["id"] for p in range(3)]
    fqdn_name = f"pbx-{uuid.uuid4().hex[:8]}.example.com"
    for c in range(3):
        owner = api.create("/v2/fqdn_connections", {"connection_name": f"scale-fqdn-{c}"})
        name = fqdn_name if c == 0 else f"other-{c}-{fqdn_name}"
        api.create(
            "/v2/fqdns", {"connection_id": owner["id"], "fqdn": name, "dns_record_type": "a", "port": 5060}
        )
    made = api.create(
        "/v2/credential_connections",
        {
            "connection_name": "scale-template",
            "user_name": f"tpl{uuid.uuid4().hex[:10]}",
            "password": "seed-password-1",
        },
    )
    template = read_document(database_url, made["id"])
    return Fixture(profiles=profiles, fqdn=fqdn_name, template=template)


def read_document(database_url: str, id: str) -> dict[str, Any]:
    import orjson

    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.split("///", 1)[1])
        (doc,) = db.execute("SELECT document FROM connection WHERE id = ?", (id,)).fetchone()
        db.close()
    else:
        import asyncpg

        async def go() -> str:
            conn = await asyncpg.connect(database_url)
            try:
                return str(await conn.fetchval("SELECT document FROM connection WHERE id = $1", id))
            finally:
                await conn.close()

        doc = asyncio.run(go())
    value: dict[str, Any] = orjson.loads(doc)
    return value


def scenarios(size: int, fx: Fixture) -> list[Scenario]:
    def q(path: str, **params: str) -> str:
        return f"{path}?" + urllib.parse.urlencode({"page[size]": str(PAGE_SIZE), **params}, safe="")

    cred = "/v2/credential_connections"
    credentials = size * 8 // 10 + 1  # the template connection too
    deep = str(min(DEEP_PAGE, math.ceil(credentials / PAGE_SIZE)))
    return [
        Scenario("plain page", "GET", [q(cred)]),
        Scenario("/connections plain page", "GET", [q("/v2/connections")]),
        Scenario(f"page {deep}", "GET", [q(cred, **{"page[number]": deep})]),
        Scenario(
            f"page {deep}, sort=connection_name",
            "GET",
            [q(cred, sort="connection_name", **{"page[number]": deep})],
        ),
        Scenario("contains=sales (10%)", "GET", [q(cred, **{"filter[connection_name][contains]": "sales"})]),
        Scenario(f"contains={RARE} (1 row)", "GET", [q(cred, **{"filter[connection_name][contains]": RARE})]),
        Scenario(
            "/connections contains=sales",
            "GET",
            [q("/v2/connections", **{"filter[connection_name][contains]": "sales"})],
        ),
        Scenario("filter[fqdn]", "GET", [q("/v2/fqdn_connections", **{"filter[fqdn]": fx.fqdn})]),
        Scenario(
            "filter[outbound_voice_profile_id]",
            "GET",
            [q(cred, **{"filter[outbound_voice_profile_id]": fx.profiles[0]})],
        ),
        *(
            Scenario(f"sort={s}", "GET", [q(cred, sort=s)])
            for s in ("created_at", "connection_name", "-connection_name", "active", "-active")
        ),
    ]


@contextmanager
def scratch_database(engine: str, tmp: Path, server_url: str, name: str = "scale") -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp / f'{name}.db'}"
        return
    with postgres_scratch(server_url, f"trunkline_{name}") as url:
        yield url


@dataclass
class Server:
    """`trunkline serve` on a scratch database, and the one account every scenario reads."""

    url: str
    user_id: str
    run: str
    port: int
    key: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serving(engine: str, opts: Options, tmp: Path, server_url: str, name: str = "scale") -> Iterator[Server]:
    """A scratch database, a key for a new account on it, and the server, all gone on exit."""
    with scratch_database(engine, tmp, server_url, name) as url:
        run = uuid.uuid4().hex[:6]
        user_id = f"scale-{run}"
        env = {**os.environ, "TRUNKLINE_DATABASE_URL": url, "TRUNKLINE_RATE_LIMIT": "100000000/second"}
        env.pop("TRUNKLINE_WORKERS", None)
        key = create_key(url, env, user_id)  # migrates the new database too
        port = opts.port or free_port()
        log = tmp / f"server-{engine}.log"
        cmd = [*trunkline_cmd(), "serve", "--host", HOST, "--port", str(port), "--workers", str(opts.workers),
               "--database-url", url]  # fmt: skip
        with process_group(cmd, log=log, env=env) as proc:
            wait_http(port, "/ready", proc, log, timeout=60)
            yield Server(url=url, user_id=user_id, run=run, port=port, key=key, proc=proc, log=log)


def measure(server: Server, scenarios: list[Scenario], opts: Options, tmp: Path) -> list[Result]:
    """Drive each scenario `--only` selects, stopping if the server died under it."""
    results = []
    for sc in scenarios:
        if opts.only and not any(o.lower() in sc.name.lower() for o in opts.only):
            continue
        print(f"  running {sc.name} ...", flush=True)
        results.append(drive(server.port, server.key, sc, opts, tmp))
        if server.proc.poll() is not None:
            raise SystemExit("the server exited during the benchmark:\n" + server.log.read_text()[-3000:])
    return results


def run_engine(
    engine: str, sizes: list[int], opts: Options, tmp: Path, server_url: str
) -> dict[int, list[Result]]:
    out: dict[int, list[Result]] = {}
    with serving(engine, opts, tmp, server_url) as srv:
        api = Api(srv.port, srv.key)
        try:
            fx = make_fixture(api, srv.url, srv.user_id)
        finally:
            api.close()
        have = 0
        for size in sizes:
            print(f"{engine}: seeding to {size:,} connections", flush=True)
            t0 = time.monotonic()
            if engine == "sqlite":
                seed_sqlite(srv.url.split("///", 1)[1], have, size, srv.user_id, srv.run, fx)
            else:
                asyncio.run(seed_postgres(srv.url, have, size, srv.user_id, srv.run, fx))
            print(f"  in {time.monotonic() - t0:.1f} s", flush=True)
            have = size
            results = measure(srv, scenarios(size, fx), opts, tmp)
            out[size] = results
            print()
            print(f"{engine}, {size:,} connections in the account:")
            print_table(results)
            print(flush=True)
    return out


def cell(r: Result) -> str:
    """One scenario at one size for the summary: req/s / p50 ms / p99 ms."""
    err = f" ({r.errors} errors)" if r.errors else ""
    if r.requests == 0:
        # wrk gives up on a request after its 5 s timeout and reports no latency.
        return f"none answered within 5 s{err}"
    return f"{r.rps:,.0f} / {r.p50_ms:.1f} / {r.p99_ms:.1f}{err}"


def summary(engine: str, by_size: dict[int, list[Result]]) -> None:
    sizes = sorted(by_size)
    header = ["scenario"] + [f"{s:,}: req/s  p50  p99 ms" for s in sizes]
    names = [r.name for r in by_size[sizes[0]]]
    print(f"| {engine} | " + " | ".join(header[1:]) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for n, name in enumerate(names):
        cells = [cell(by_size[s][n]) for s in sizes]
        label = (
            name.replace(name.split(",")[0], "deepest page (at most 10,000)")
            if name.startswith("page ")
            else name
        )
        print(f"| {label} | " + " | ".join(cells) + " |")


@dataclass
class CommandLine:
    """The options this benchmark and benchmarks/scale_lists.py share, parsed."""

    args: argparse.Namespace
    sizes: list[int]
    options: Options
    engines: list[str]
    parser: argparse.ArgumentParser


def command_line(argv: list[str] | None, *, description: str, sizes_help: str) -> CommandLine:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    p.add_argument("--sizes", default="10000,100000", help=sizes_help)
    p.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432", help="server URL, no database"
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=5, help="seconds measured per scenario (default 5)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of discarded warm-up (default 1)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--port", type=int)
    p.add_argument("--only", action="append", default=[], help="scenarios whose name contains this")
    a = p.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in a.sizes.split(",")})
    opts = Options(workers=a.workers, database_url=None, connections=a.connections, duration=a.duration,
                   warmup=a.warmup, seed=0, threads=a.threads, generator="wrk", prism=None, port=a.port,
                   only=a.only)  # fmt: skip
    engines = ["sqlite", "postgresql"] if a.engine == "both" else [a.engine]
    return CommandLine(args=a, sizes=sizes, options=opts, engines=engines, parser=p)


RunEngine = Callable[[str, list[int], Options, Path, str], dict[int, list[Result]]]


def run_engines(cl: CommandLine, run: RunEngine, prefix: str) -> dict[str, dict[int, list[Result]]] | None:
    """Each engine's results by size, in a scratch directory removed after; None when interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)
    results: dict[str, dict[int, list[Result]]] = {}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
        try:
            for engine in cl.engines:
                results[engine] = run(engine, cl.sizes, cl.options, Path(tmpdir), cl.args.postgres)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return None
    return results


def main(argv: list[str] | None = None) -> int:
    cl = command_line(
        argv, description=__doc__ or "", sizes_help="comma-separated account sizes, grown in turn"
    )
    a = cl.args
    results = run_engines(cl, run_engine, "trunkline-scale-")
    if results is None:
        return 130
    print(f"trunkline serve --workers {a.workers}; {a.connections} connections, wrk ({wrk_version()}), "
          f"{a.duration:g} s per scenario after {a.warmup:g} s warm-up; page[size]={PAGE_SIZE}; "
          f"{os.cpu_count()} CPUs; cells: req/s / p50 ms / p99 ms")  # fmt: skip
    for engine, by_size in results.items():
        print()
        summary(engine, by_size)
    return 1 if any_errors(results) else 0


def any_errors(results: dict[str, dict[int, list[Result]]]) -> bool:
    """Whether any scenario of any engine and size had a failed request: the run's exit status."""
    return any(r.errors for by_size in results.values() for rs in by_size.values() for r in rs)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
