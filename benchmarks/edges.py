"""SIP edges on one PostgreSQL and one Redis: REGISTER/s and call setups/s with one edge and with two.

    python -m benchmarks.edges [--rates 50,100] [--register-rates 400,800] [--seconds 10]
                               [--users 1000] [--deck 100000] [--refused 0.1] [--children 2]

One scratch PostgreSQL database (benchmarks/_postgres.py; dropped at the end), migrated, holds
`--users` credential connections (sip_register.py's seeding: REGISTER with digest auth) and, per SIPp
caller, an IP connection whose outbound voice profile has every admission rule active (call_setup.py's
"policy on": a whitelist, a rate deck with max_destination_rate, a calling window with calls_per_cld, a
daily spend limit, channel limits on the connection, the profile and the account; a `--refused` share
of the calls dial London, outside the whitelist, and get 403 D13). A SIPp UAS on 127.0.0.2 is every
edge's upstream carrier. Three setups, each started afresh, in this order:

- baseline: one edge on 127.0.30.1 counting calls in its own memory (Kamailio's dialog profiles);
- one edge on 127.0.30.1 counting calls in Redis (TRUNKLINE_REDIS_URL: one Lua check-and-take per
  INVITE, src/trunkline/sip/counters.py) under a key prefix of this run's own, removed at the end;
- two edges, 127.0.30.1 and 127.0.30.2, peers of each other (TRUNKLINE_SIP_PEERS), both counting in
  that Redis and keeping their bindings in the same PostgreSQL (usrloc db_mode 3,
  src/trunkline/sip/render.py; REGISTER outcomes in sip_registration_outcome).

Each edge is `trunkline sip` in a process of its own, as a deployment runs it, with its own
TRUNKLINE_SIP_DIR and TRUNKLINE_SIP_HOST (the variables behind --sip-dir and --sip-host, cli/sip.py).
In each setup the load is spread over the edges, one SIPp per edge at rate/edges:

1. REGISTER: at each `--register-rates` rate for `--seconds`, each edge's SIPp registers its own share
   of the users (401 challenge, then 200: benchmarks/sip/register_auth.xml). The bindings are deleted
   before each round: with db_mode 3 the database is their only copy, and every round starts equal.
2. calls: at each `--rates` rate for `--seconds`, each edge's SIPp UAC places call_setup.py's short
   calls from an address of its own (its own IP connection; the account and the profile are the same,
   so with two edges both take from the same Redis counters); then every call must be a finished
   call record (call_setup.check_records), so the next round does not pay for this one's imports.

Each round prints the achieved rate (successful REGISTERs, or final responses to INVITEs, per second
between SIPp's first and last, summed over the SIPps), p50/p99 latency (REGISTER: first request to
the 200 after the challenge; calls: INVITE to final response, admitted calls; SIPp's whole
milliseconds), failed calls, retransmissions, Kamailio's error lines, and the CPU milliseconds per
operation of each process: each Kamailio (with its workers), each `trunkline sip` (the call-log
importer and the ACL reconciler), the SIPp clients and UAS, this database's PostgreSQL backends, the
Redis server, and the rest of the machine. Then a table: every setup beside the baseline, and the ratio
two edges / one edge. Figures are printed, never asserted (the exit status is 0 when the run finished).

On a 2-core machine (the one benchmarks/README.md's figures come from) two edges share the cores with
PostgreSQL, Redis and SIPp, so a second edge cannot double anything there; the run says so.

Everything runs on this machine and stops by itself: rates, rounds and waits are bounded, and the
edges, the SIPp processes, the temporary directory, the Redis keys and the database are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import redis

from benchmarks.call_setup import (
    HIGH_LIMIT,
    UPSTREAM_IP,
    USERS,
    Numbers,
    Result,
    Run,
    Uas,
    check_records,
    counter,
    create_connections,
    error_kinds,
    kamailio_cpu,
    kamailio_errors,
    last_stats,
    load_deck,
    machine_cpu,
    percentile,
    place_calls,
    proc_cpu,
    read_response_times,
    shared_memory,
    trunkline_cli,
    udp_receive_drops,
    upstream,
    wait_for_acl,
    write_deck,
)
from benchmarks.call_setup import _interrupt as unwind_on_sigterm
from benchmarks.sip_register import (
    REALM,
    create_users,
    database,
    free_port,
    kamailio_url,
    register_command,
    users_file,
    write,
)
from trunkline import edge as edge_wiring
from trunkline.config import Settings
from trunkline.sip.rpc import KamailioError, RpcClient

REDIS = os.environ.get("TRUNKLINE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
EDGE_IPS = ("127.0.30.1", "127.0.30.2")
START_TIMEOUT = 60.0  # two shared cores, other work on the machine: generous, but bounded
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Setup:
    key: str  # in file names and caller addresses
    name: str
    edges: int
    shared: bool  # call counts in Redis


SETUPS = (
    Setup("base", "1 edge, in-memory counts (baseline)", 1, False),
    Setup("one", "1 edge, Redis counts", 1, True),
    Setup("two", "2 edges, Redis counts", 2, True),
)


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` whole shares as equal as they come (151 in 2: 76, 75)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- the edges, each `trunkline sip` in a process of its own -----------------------------------


@dataclass
class Edge:
    ip: str
    port: int
    settings: Settings
    proc: subprocess.Popen[bytes]
    output: IO[bytes]  # the process's stderr and stdout
    output_path: Path
    rpc: RpcClient
    first_kamailio: int | None = None

    @property
    def workdir(self) -> Path:
        return edge_wiring.workdir(self.settings)

    @property
    def log(self) -> Path:
        return self.workdir / "kamailio.log"  # sip/supervisor.py, Supervisor.log_path

    @property
    def kamailio_pid(self) -> int | None:
        """The running Kamailio, from the supervisor's own record (sip/supervisor.py, pid_path)."""
        try:
            return int((self.workdir / "kamailio.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def edge_env(settings: Settings) -> dict[str, str]:
    """The settings as the TRUNKLINE_* variables `trunkline sip` reads (config.py: env_prefix), and no
    other TRUNKLINE_* variable of this process's environment, so each edge runs exactly these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is not None:
            env[f"TRUNKLINE_{name.upper()}"] = str(value)
    return env


def launch_edge(settings: Settings, output_path: Path) -> Edge:
    output = output_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "sip"],
        env=edge_env(settings),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches this process only; the finally blocks stop the edges
    )
    rpc = RpcClient(edge_wiring.edge_config(settings).rpc_socket, timeout=2.0)
    return Edge(settings.sip_host, settings.sip_port, settings, proc, output, output_path, rpc)


def wait_ready(edge: Edge) -> None:
    """Until Kamailio answers RPC, as the supervisor's own start does (sip/supervisor.py, start)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if edge.proc.poll() is not None:
            tail = edge.output_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"trunkline sip on {edge.ip} exited with {edge.proc.returncode}: {tail}")
        with contextlib.suppress(KamailioError):
            edge.rpc.call("core.version")
            edge.first_kamailio = edge.kamailio_pid
            return
        time.sleep(0.1)
    raise RuntimeError(f"the edge on {edge.ip} did not answer within {START_TIMEOUT:.0f} s")


def stop_edge(edge: Edge) -> None:
    """SIGTERM, as `trunkline sip` expects (cli/sip.py: it stops Kamailio, then exits); SIGKILL to it
    and to its Kamailio's process group only if it does not exit in time."""
    if edge.proc.poll() is None:
        edge.proc.send_signal(signal.SIGTERM)
        try:
            edge.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  ! trunkline sip on {edge.ip} did not stop in {STOP_TIMEOUT:.0f} s: killed", flush=True)
            edge.proc.kill()
            edge.proc.wait(timeout=10)
            pid = edge.kamailio_pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # the supervisor starts it in a group of its own
    edge.output.close()


@contextlib.contextmanager
def running_edges(
    setup: Setup, url: str, up_port: int, prefix: str, tmp: Path, args: argparse.Namespace
) -> Iterator[list[Edge]]:
    ips = EDGE_IPS[: setup.edges]
    edges: list[Edge] = []
    try:
        for n, ip in enumerate(ips, 1):
            extra: dict[str, Any] = {}
            if setup.shared:
                extra |= {"redis_url": REDIS, "redis_prefix": prefix}
            peers = [p for p in ips if p != ip]
            if peers:
                extra["sip_peers"] = ",".join(peers)
            settings = Settings(
                database_url=url, sip_database_url=kamailio_url("postgresql", url),
                sip_dir=tmp / f"{setup.key}-edge{n}", sip_host=ip, sip_port=free_port(ip), sip_tls_port=0,
                sip_realm=REALM, sip_upstream=f"{UPSTREAM_IP}:{up_port}", sip_children=args.children,
                sip_poll_seconds=0.1, log_level="warning", node_id=900 + n, **extra,
            )  # fmt: skip
            edges.append(launch_edge(settings, tmp / f"{setup.key}-edge{n}.log"))
        for e in edges:  # launched side by side, then waited for
            wait_ready(e)
        yield edges
    finally:
        for e in edges:
            stop_edge(e)


# --- where the CPU went -------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds spent so far by each party, and the machine's UDP drops."""

    busy: float
    total: float
    kamailio: list[float]  # per edge
    trunkline: list[float]  # per edge's `trunkline sip`
    sipp_uac: float  # waited children of this process: the UACs of finished rounds
    sipp_uas: float
    postgres: dict[int, float]  # this database's backends, by pid
    redis: float
    udp_drops: int


class Meter:
    def __init__(self, url: str, uas: Uas) -> None:
        self.url = url
        self.uas = uas
        self.redis_pid = redis_server_pid()

    def sample(self, edges: Sequence[Edge]) -> Usage:
        busy, total = machine_cpu()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Usage(
            busy=busy,
            total=total,
            kamailio=[kamailio_cpu(e.kamailio_pid) for e in edges],
            trunkline=[proc_cpu(e.proc.pid)[1] for e in edges],
            sipp_uac=children.ru_utime + children.ru_stime,
            sipp_uas=proc_cpu(self.uas.pid)[1],
            postgres={pid: proc_cpu(pid)[1] for pid in asyncio.run(postgres_backends(self.url))},
            redis=proc_cpu(self.redis_pid)[1] if self.redis_pid else 0.0,
            udp_drops=udp_receive_drops(),
        )


async def postgres_backends(url: str) -> list[int]:
    """The server processes serving this database now, but for the one asking
    (https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


def redis_server_pid() -> int | None:
    """The Redis server's process (INFO server, process_id); None when it is not readable here."""
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=1)
    try:
        pid = int(client.info("server").get("process_id", 0))
    finally:
        client.close()
    return pid if pid and Path(f"/proc/{pid}").exists() else None


def cpu_parts(edges: Sequence[Edge], before: Usage, after: Usage) -> tuple[dict[str, float], float, int]:
    """CPU seconds of each party over the interval, the machine's busy share, and its UDP drops. A
    PostgreSQL backend that started in the interval counts whole; one that ended in it is lost."""
    parts: dict[str, float] = {}
    for i, e in enumerate(edges):
        parts[f"kamailio {e.ip}"] = after.kamailio[i] - before.kamailio[i]
    for i, e in enumerate(edges):
        parts[f"trunkline sip {e.ip}"] = after.trunkline[i] - before.trunkline[i]
    parts["SIPp"] = after.sipp_uac - before.sipp_uac + after.sipp_uas - before.sipp_uas
    parts["PostgreSQL"] = sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in after.postgres.items())
    parts["Redis"] = after.redis - before.redis
    busy = after.busy - before.busy
    parts["other"] = max(0.0, busy - sum(parts.values()))
    share = busy / max(after.total - before.total, 1e-9)
    return parts, share, after.udp_drops - before.udp_drops


# --- one round ----------------------------------------------------------------------------------


@dataclass
class Round:
    setup: Setup
    test: str  # "REGISTER" or "calls"
    offered: int
    ops: int = 0  # successful REGISTERs, or calls placed
    per_second: float = 0.0
    times: list[float] = field(default_factory=list)  # REGISTERs, or admitted calls
    refused_times: list[float] = field(default_factory=list)
    failed: int = 0
    retransmissions: int = 0
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0
    udp_drops: int = 0
    notes: list[str] = field(default_factory=list)
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # when the round began

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per operation, every party but "other" (the rest of the machine)."""
        return sum(v for k, v in self.cpu.items() if k != "other") * 1000 / max(self.ops, 1)


def per_second(stamps: Sequence[float]) -> float:
    """Responses per second between the first and the last (SIPp's dates, ms since it started)."""
    if len(stamps) < 2 or max(stamps) <= min(stamps):
        return 0.0
    return (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000)


def log_offsets(edges: Sequence[Edge]) -> list[int]:
    return [e.log.stat().st_size if e.log.exists() else 0 for e in edges]


def finish(rnd: Round, edges: Sequence[Edge], meter: Meter, before: Usage, offsets: list[int]) -> None:
    rnd.cpu, rnd.busy, rnd.udp_drops = cpu_parts(edges, before, meter.sample(edges))
    for e, start in zip(edges, offsets, strict=True):
        rnd.errors += kamailio_errors(e.log, start)


async def clear_bindings(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM location")
    finally:
        await conn.close()


def register_round(
    setup: Setup, edges: Sequence[Edge], users: list[str], rate: int, url: str, meter: Meter, tmp: Path,
    args: argparse.Namespace,
) -> Round:  # fmt: skip
    asyncio.run(clear_bindings(url))
    rnd = Round(setup, "REGISTER", rate)
    shares = split(rate, len(edges))
    offsets, before = log_offsets(edges), meter.sample(edges)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for k, (e, share) in enumerate(zip(edges, shares, strict=True)):
            workdir = tmp / f"register-{setup.key}-{rate}-{k + 1}"
            workdir.mkdir()
            csv = users_file(workdir / "users.csv", users[k :: len(edges)])
            stats = workdir / "stat.csv"
            cmd = register_command((e.ip, e.port), csv, share, share * args.seconds, args.seconds, stats)
            cmd += ["-trace_rtt", "-rtt_freq", "1"]
            with (workdir / "sipp.out").open("wb") as out:  # SIPp's own messages, for a look after
                procs.append((subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=out), workdir))
        for proc, _ in procs:
            proc.wait(timeout=args.seconds * 4 + 60)  # SIPp's own -timeout ends it before that
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finish(rnd, edges, meter, before, offsets)
    for _, workdir in procs:
        last = last_stats(workdir / "stat.csv")
        rnd.ops += counter(last, "SuccessfulCall(C)")
        rnd.failed += counter(last, "FailedCall(C)")
        rnd.retransmissions += counter(last, "Retransmissions(C)")
        times: dict[str, list[float]] = {}
        rnd.per_second += per_second(read_response_times(workdir, times))
        rnd.times += times.get("register", [])
    return rnd


def call_round(
    setup: Setup, edges: Sequence[Edge], runs: list[Run], url: str, uas: Uas, meter: Meter, tmp: Path,
    args: argparse.Namespace,
) -> Round:  # fmt: skip
    rnd = Round(setup, "calls", sum(r.rate for r in runs))
    upstream_before = counter(last_stats(uas.stats), "SuccessfulCall(C)")
    offsets, before = log_offsets(edges), meter.sample(edges)
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:  # the UACs side by side, one per edge
        futures = [
            pool.submit(place_calls, run, e.port, args, tmp / f"calls-{setup.key}-{rnd.offered}-{k}", e.ip)
            for k, (run, e) in enumerate(zip(runs, edges, strict=True), 1)
        ]
        results: list[Result] = [f.result() for f in futures]
        # The CPU of a round's calls includes importing their records, so it is read once they are
        # in; the edges' records are waited for side by side, so the wait is bounded once, not per edge.
        waits = [pool.submit(check_records, url, result, args.records_timeout) for result in results]
        for wait in waits:
            wait.result()
    finish(rnd, edges, meter, before, offsets)
    time.sleep(1.2)  # the UAS writes its statistics every second
    answered = counter(last_stats(uas.stats), "SuccessfulCall(C)") - upstream_before
    for result in results:
        rnd.ops += result.placed
        rnd.failed += result.failed
        rnd.retransmissions += result.retransmissions
        rnd.per_second += result.per_second
        rnd.times += result.times.get("admitted", [])
        rnd.refused_times += result.times.get("refused", [])
        if not result.records_ok:
            rnd.notes.append(f"records from {result.run.address}: {result.records}")
    # The UAS counts a call once it answered the BYE, and each OPTIONS probe it answers as one too
    # (call_setup_uas.xml), so it may count a few more than were admitted; fewer means admitted calls
    # whose ACK or BYE never reached it.
    admitted = sum(len(r.times.get("admitted", [])) for r in results)
    if answered < admitted:
        rnd.notes.append(
            f"the upstream completed {answered} calls (to the BYE), SIPp saw {admitted} admitted"
        )
    return rnd


OPERATION = {"REGISTER": "REGISTER", "calls": "call"}


def ms(values: list[float]) -> str:
    if not values:
        return "- / -"
    return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f}"


def describe(rnd: Round, edges: Sequence[Edge]) -> None:
    what = "REGISTERs ok" if rnd.test == "REGISTER" else "calls placed"
    text = (
        f"    {rnd.per_second:7.1f}/s achieved; {rnd.ops} {what}, {rnd.failed} failed,"
        f" {rnd.retransmissions} retransmissions; p50 / p99 {ms(rnd.times)} ms"
    )
    if rnd.test == "calls":
        text += f" ({len(rnd.times)} admitted; {len(rnd.refused_times)} refused: {ms(rnd.refused_times)} ms)"
    print(text)
    per_op = ", ".join(f"{k} {v * 1000 / max(rnd.ops, 1):.2f}" for k, v in rnd.cpu.items())
    print(f"    cpu: machine {rnd.busy:.0%} busy; ms per {OPERATION[rnd.test]}: {per_op}")
    shm = "; ".join(f"{e.ip} {shared_memory(e.rpc)}" for e in edges)
    print(f"    UDP receive-buffer drops: {rnd.udp_drops}; {shm}")
    for note in rnd.notes:
        print(f"    ! {note}")
    if rnd.errors:
        print(f"    ! kamailio.log: {len(rnd.errors)} error lines; the first: {rnd.errors[0].strip()[:200]}")
        for n, kind in error_kinds(rnd.errors)[:6]:
            print(f"      {n:6} x {kind}")
    sys.stdout.flush()


# --- the plan and the run -----------------------------------------------------------------------


def plan(args: argparse.Namespace) -> dict[tuple[str, int], list[Run]]:
    """Per setup and offered rate, one run per edge at its share of the rate, each from an address
    of its own (127.0.31-33.x) with numbers of its own."""
    pool = Numbers()
    runs: dict[tuple[str, int], list[Run]] = {}
    for s, setup in enumerate(SETUPS):
        for i, rate in enumerate(args.rates):
            runs[setup.key, rate] = [
                Run("on", share, f"127.0.{31 + s}.{1 + i * len(EDGE_IPS) + k}", calls)
                for k, share in enumerate(split(rate, setup.edges))
                for calls in [pool.mix(share * args.seconds, args.refused)]
            ]
    return runs


def redis_reachable() -> None:
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        sys.exit(f"Redis is not reachable at {REDIS} (TRUNKLINE_BENCH_REDIS): {exc}")
    finally:
        client.close()


def redis_keys(prefix: str) -> dict[str, int]:
    """This run's keys in Redis by kind: calls_per_cld counters (one per number admitted under a
    calling window), channel counters still holding calls, edges' hashes of their calls."""
    client = redis.Redis.from_url(REDIS)
    try:
        kinds: dict[str, int] = {}
        for key in client.scan_iter(f"{prefix}*", count=1000):
            kind = key.decode()[len(prefix) :].split(":", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds
    finally:
        client.close()


def forget(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __str__(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"[{seconds // 60:02d}:{seconds % 60:02d}]"


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def busy_before(seconds: float = 3.0) -> float:
    """The machine's busy share over a few seconds with nothing of this run going: other work."""
    busy, total = machine_cpu()
    time.sleep(seconds)
    busy_after, total_after = machine_cpu()
    return (busy_after - busy) / max(total_after - total, 1e-9)


def run_setup(
    setup: Setup, runs: dict[tuple[str, int], list[Run]], users: list[str], url: str, uas: Uas,
    up_port: int, prefix: str, meter: Meter, tmp: Path, args: argparse.Namespace, clock: Clock,
) -> list[Round]:  # fmt: skip
    rounds: list[Round] = []
    print(f"\n{clock} == {setup.name}: starting {setup.edges} edge(s); load average {load()}", flush=True)
    with running_edges(setup, url, up_port, prefix, tmp, args) as edges:
        mine = [run for rate in args.rates for run in runs[setup.key, rate]]
        for e in edges:
            wait_for_acl(e.rpc, mine)
        where = ", ".join(f"{e.ip}:{e.port}" for e in edges)
        print(f"{clock}    edges on {where} ({args.children} SIP workers each) ready", flush=True)
        for rate in args.register_rates:
            shares = " + ".join(f"{s}/s" for s in split(rate, len(edges)))
            print(f"{clock}  REGISTER at {rate}/s ({shares}) for {args.seconds} s ...", flush=True)
            rounds.append(register_round(setup, edges, users, rate, url, meter, tmp, args))
            describe(rounds[-1], edges)
        for rate in args.rates:
            shares = " + ".join(f"{r.rate}/s from {r.address}" for r in runs[setup.key, rate])
            print(f"{clock}  calls at {rate}/s ({shares}) for {args.seconds} s ...", flush=True)
            rounds.append(call_round(setup, edges, runs[setup.key, rate], url, uas, meter, tmp, args))
            describe(rounds[-1], edges)
        for e in edges:
            if e.kamailio_pid != e.first_kamailio:
                print(f"  ! the supervisor on {e.ip} restarted Kamailio during the rounds")
    if setup.shared:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(redis_keys(prefix).items())) or "none"
        print(f"    Redis keys of this run (prefix {prefix!r}) so far: {kinds}", flush=True)
    return rounds


def tables(rounds: list[Round]) -> None:
    print(
        "\nEvery round. Latency: REGISTER, first request to the 200; calls, INVITE to final response of"
        " admitted calls. Other: the machine's busy CPU no party of the run accounts for (other work on"
        " the machine, this process, PostgreSQL's shared processes). Load: 1-minute load average as the"
        " round began."
    )
    print(
        "| setup | test | offered/s | achieved/s | p50 / p99 ms | failed | retrans | kamailio errors"
        " | load | machine busy | CPU ms per op: kamailio / trunkline sip / SIPp / PostgreSQL / Redis"
        " | other |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rounds:
        kam = sum(v for k, v in r.cpu.items() if k.startswith("kamailio"))
        tl = sum(v for k, v in r.cpu.items() if k.startswith("trunkline"))
        cpu = [kam, tl, r.cpu.get("SIPp", 0.0), r.cpu.get("PostgreSQL", 0.0), r.cpu.get("Redis", 0.0)]
        per_op = " / ".join(f"{v * 1000 / max(r.ops, 1):.2f}" for v in cpu)
        print(
            f"| {r.setup.name} | {r.test} | {r.offered} | {r.per_second:.0f} | {ms(r.times)} | {r.failed}"
            f" | {r.retransmissions} | {len(r.errors)} | {r.load:.1f} | {r.busy:.0%} | {per_op}"
            f" | {r.cpu.get('other', 0.0) * 1000 / max(r.ops, 1):.2f} |"
        )
    base, one, two = (s.key for s in SETUPS)
    by = {(r.setup.key, r.test, r.offered): r for r in rounds}
    print("\nAchieved/s (p99 ms) beside the baseline, and two edges / one edge (both on Redis)")
    print(
        "| test | offered/s | baseline: 1 edge, in memory | 1 edge, Redis | 2 edges, Redis"
        " | 2 edges / 1 edge: rate | p99 | CPU ms per op |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for test, rate in dict.fromkeys((r.test, r.offered) for r in rounds):
        cells = [by.get((key, test, rate)) for key in (base, one, two)]
        shown = [f"{c.per_second:.0f} ({percentile(c.times, 99):.0f})" if c else "-" for c in cells]
        a, b = cells[1], cells[2]
        ratios = ["-", "-", "-"]
        if a is not None and b is not None:
            p99a, p99b = percentile(a.times, 99), percentile(b.times, 99)  # NaN without times
            ratios = [
                f"{b.per_second / a.per_second:.2f}" if a.per_second else "-",
                f"{p99b / p99a:.2f}" if p99a and not math.isnan(p99a) and not math.isnan(p99b) else "-",
                f"{b.cpu_ms / a.cpu_ms:.2f}" if a.cpu_ms else "-",
            ]
        print(f"| {test} | {rate} | {' | '.join(shown)} | {' | '.join(ratios)} |")
    cores = os.cpu_count() or 0
    print(
        f"\nThis machine has {cores} CPU(s){': ' if cores <= 2 else ''}"
        + (
            "two edges share them with PostgreSQL, Redis and SIPp, so a second edge cannot show 2x here;"
            " the ratio says what a second edge costs or gains on the same cores, not how edges scale on"
            " machines of their own."
            if cores <= 2
            else "."
        )
    )


def run(args: argparse.Namespace) -> None:
    clock = Clock()
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-edges-"))
    prefix = f"bench-edges-{uuid.uuid4().hex[:10]}:"
    rounds: list[Round] = []
    try:
        print(
            f"{clock} load average {load()}; the machine was {busy_before():.0%} busy over 3 s before the"
            " run began (other work); creating a PostgreSQL database and migrating it",
            flush=True,
        )
        with database("postgresql", tmp) as url:
            runs = plan(args)
            every = [r for rs in runs.values() for r in rs]
            users = create_users(url, args.users)
            asyncio.run(write(url, lambda conn: create_connections(conn, every)))
            trunkline_cli(url, "accounts", "set-limits", "--user-id", USERS["on"],
                          "--concurrent-calls", str(HIGH_LIMIT))  # fmt: skip
            print(f"{clock} {args.users} credential connections, {len(every)} IP connections", flush=True)
            deck = tmp / "deck.csv"
            load_deck(url, deck, write_deck(deck, args.deck, every))
            up_port = free_port(UPSTREAM_IP)
            with upstream(up_port, tmp) as uas:
                meter = Meter(url, uas)
                for setup in SETUPS:
                    rounds += run_setup(
                        setup, runs, users, url, uas, up_port, prefix, meter, tmp, args, clock
                    )
            tables(rounds)
            print(f"{clock} done; load average {load()}", flush=True)
    finally:
        with contextlib.suppress(redis.RedisError):
            print(f"  removed {forget(prefix)} Redis keys under {prefix}", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)


def rates(text: str, low: int, high: int) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or any(not low <= v <= high for v in values):
        raise argparse.ArgumentTypeError(f"comma-separated rates from {low} to {high}")
    return values


def bounded(low: float, high: float, kind: type[int] | type[float] = int) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"from {low} to {high}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=lambda s: rates(s, 2, 1000), default=[50, 100],
                        help="call setups/s offered, over all edges")  # fmt: skip
    parser.add_argument("--register-rates", type=lambda s: rates(s, 2, 3000), default=[400, 800],
                        help="REGISTERs/s offered, over all edges")  # fmt: skip
    parser.add_argument("--seconds", type=bounded(1, 30), default=10, help="length of each round")
    parser.add_argument("--users", type=bounded(2, 10_000), default=1000, help="credential connections")
    parser.add_argument(
        "--deck", type=bounded(0, 200_000), default=100_000, help="generated rate deck prefixes"
    )
    parser.add_argument("--refused", type=bounded(0, 0.5, float), default=0.1,
                        help="share of calls dialling London, refused with 403 D13")  # fmt: skip
    parser.add_argument(
        "--hold-ms", type=bounded(0, 1000), default=0, help="how long an admitted call stays up"
    )
    default_children = Settings.model_fields["sip_children"].default
    parser.add_argument(
        "--children", type=bounded(1, 8), default=default_children, help="Kamailio SIP workers per edge"
    )
    parser.add_argument("--records-timeout", type=bounded(5, 120, float), default=60.0)
    args = parser.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    redis_reachable()
    rounds = len(SETUPS) * (len(args.rates) + len(args.register_rates))
    print(
        f"{len(SETUPS)} setups x ({len(args.register_rates)} REGISTER + {len(args.rates)} call rounds) of"
        f" {args.seconds} s: about {rounds * (args.seconds + 8) + 60} s in all"
    )
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the edges and drop the database.
    signal.signal(signal.SIGTERM, unwind_on_sigterm)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted: the edges, SIPp, the database and this run's Redis keys are removed", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
