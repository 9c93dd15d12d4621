"""SIP edge benchmark: call setups per second through the outbound policy, and what the policy costs.

    python -m benchmarks.call_setup [--backend sqlite|postgresql|both] [--rates 100,200,300,500]
                                    [--seconds 10] [--deck 100000] [--refused 0.1] [--hold-ms 0]

For each backend it starts a real edge (Kamailio supervised by trunkline, as `trunkline sip` does) on
loopback with a fresh database, and a SIPp UAS on 127.0.0.2 as its upstream carrier (200 at once,
then ACK and BYE; its OPTIONS probes answered). At each offered rate, for `--seconds`, a SIPp UAC
places short calls (INVITE, 200, ACK, BYE after `--hold-ms`) from a caller address of its own,
recognised by address alone, each call to a number of its own (an -inf file): valid US numbers (1212
and seven digits) and, a `--refused` share of them (every tenth by default), valid London numbers.

- policy off: an IP connection whose outbound voice profile sets no optional rule: its whitelist
  (US, GB) covers every number dialled; no rate deck is loaded; no calling window, daily spend,
  calls_per_cld or channel limits. What is left is what every call pays: recognition, the number's
  parsing (D14), the dialog and the call log.
- policy on: an IP connection whose profile has every rule active: a whitelist (US, CA), a rate deck
  (`trunkline rates import`: `--deck` generated prefixes plus the dialled ones) with
  `max_destination_rate`, a calling window around now with a large `calls_per_cld`, an enabled high
  `daily_spend_limit`, and high channel limits on the connection, the profile and the account
  (`trunkline accounts set-limits`). The US calls pass every rule; the London ones are outside the
  whitelist, refused with 403 D13, so refusals are measured too.

The deck is server-wide, so the policy-off runs go first and the deck is loaded between the two
series. Every run has a connection and caller address of its own, so its records are counted exactly.
Each run prints the achieved setups per second (final responses per second between the first and the
last), admitted and refused calls, failed calls and unexpected messages, the setup latency (INVITE to
final response: SIPp's response time of every call, -trace_rtt, in whole milliseconds) p50/p99 and
mean, what the upstream answered, whether every call SIPp placed is a finished `call_record` of its
connection ("records: N/N"), and any error Kamailio logged; then a table of policy off beside on.

Everything runs on this machine and stops by itself: runs, imports and waits are bounded, and the
edge, the SIPp processes, the temporary directory and the scratch PostgreSQL database are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa

from benchmarks.sip_register import database, free_port, kamailio_url, write
from trunkline import edge
from trunkline.config import Settings
from trunkline.resources import connections, ips
from trunkline.resources import outbound_voice_profiles as profiles
from trunkline.resources.connections import kinds
from trunkline.sip import numbers
from trunkline.sip.rpc import RpcClient
from trunkline.sip.service import EdgeService
from trunkline.store.db import Database

HERE = Path(__file__).parent
UAC = HERE / "sip" / "call_setup.xml"
UAS = HERE / "sip" / "call_setup_uas.xml"
REALM = "sip.bench.test"
UPSTREAM_IP = "127.0.0.2"
USERS = {"off": "bench-policy-off", "on": "bench-policy-on"}
# Channel limits of the policy-on connection, profile and account: set, and far above what is up.
HIGH_LIMIT = 10_000
CALLS_PER_CLD = 1_000
MAX_RATE = 0.05
# How a record of each kind of call looks once imported: (state, sip_status, d_code).
ADMITTED = ("finished", 200, None)
REFUSED = ("finished", 403, "D13")


# --- what is dialled --------------------------------------------------------------------------


def valid_numbers(template: str, first: int, country: str) -> Iterator[str]:
    """Numbers of `template` (one integer slot, from `first` on) that libphonenumber calls valid in
    `country`, as the edge reads them."""
    for i in itertools.count(first):
        number = template.format(i)
        dialled = numbers.classify(number, "US")
        if dialled.e164 == number and country in dialled.countries:
            yield number


class Numbers:
    """Valid numbers, each handed out once: US ones (1212 and seven digits) and London ones."""

    def __init__(self) -> None:
        self.us = valid_numbers("+1212{:07d}", 2_000_000, "US")  # subscriber numbers start with 2-9
        self.gb = valid_numbers("+44207{:07d}", 0, "GB")

    def mix(self, count: int, refused: float) -> list[str]:
        """`count` numbers, a `refused` share of them London ones spread evenly (every tenth for 0.1)."""
        return [
            next(self.gb) if math.floor((i + 1) * refused) > math.floor(i * refused) else next(self.us)
            for i in range(count)
        ]


@dataclass
class Run:
    """One SIPp run: a mode (policy off or on) at one offered rate, from an address of its own."""

    mode: str
    rate: int
    address: str
    numbers: list[str]
    conn_id: str = ""

    @property
    def refusals(self) -> int:
        """Calls the policy refuses: the London numbers (allowed when the policy is off)."""
        return 0 if self.mode == "off" else sum(n.startswith("+44") for n in self.numbers)


@dataclass
class Result:
    run: Run
    placed: int = 0
    failed: int = 0
    unexpected: int = 0
    timeouts: int = 0
    retransmissions: int = 0
    per_second: float = 0.0
    elapsed: float = 0.0
    times: dict[str, list[float]] = field(default_factory=dict)
    upstream: int = 0
    records: str = ""
    records_ok: bool = False
    kamailio_errors: list[str] = field(default_factory=list)
    cpu: str = ""


def plan(args: argparse.Namespace) -> list[Run]:
    pool = Numbers()
    runs = []
    for m, mode in enumerate(("off", "on")):
        for i, rate in enumerate(args.rates):
            calls = pool.mix(rate * args.seconds, args.refused)
            runs.append(Run(mode, rate, f"127.0.{m + 1}.{i + 1}", calls))
    return runs


# --- the accounts, profiles and connections -------------------------------------------------------


def calling_window(now: dt.datetime) -> dict[str, Any]:
    """A window from three hours ago to three hours ahead (UTC; it may wrap midnight)."""
    start, end = now - dt.timedelta(hours=3), now + dt.timedelta(hours=3)
    return {"start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}", "calls_per_cld": CALLS_PER_CLD}


def profile_bodies() -> dict[str, dict[str, Any]]:
    return {
        "off": {"name": "bench policy off", "whitelisted_destinations": ["US", "GB"]},
        "on": {
            "name": "bench policy on",
            "whitelisted_destinations": ["US", "CA"],
            "max_destination_rate": MAX_RATE,
            "calling_window": calling_window(dt.datetime.now(dt.UTC)),
            "daily_spend_limit": "1000000.00",
            "daily_spend_limit_enabled": True,
            "concurrent_call_limit": HIGH_LIMIT,
        },
    }


async def create_connections(conn: Any, runs: list[Run]) -> None:
    ovp = {
        mode: (await profiles.create(conn, USERS[mode], body))["id"]
        for mode, body in profile_bodies().items()
    }
    for run in runs:
        user = USERS[run.mode]
        outbound: dict[str, Any] = {"outbound_voice_profile_id": ovp[run.mode]}
        if run.mode == "on":
            outbound["channel_limit"] = HIGH_LIMIT
        body = {"connection_name": f"bench-{run.mode}-{run.rate}", "outbound": outbound}
        run.conn_id = (await connections.create(conn, user, kinds.IP, body, realm=REALM))["id"]
        await ips.create(conn, user, {"ip_address": run.address, "connection_id": run.conn_id})


def trunkline_cli(url: str, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "TRUNKLINE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "trunkline", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"trunkline {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def write_deck(path: Path, size: int, runs: list[Run]) -> int:
    """`size` generated prefixes, plus one per dialled number's first seven digits: all rated below
    MAX_RATE, so the rule runs and passes. Returns the number of rates written."""
    rng = random.Random(1)
    rates: dict[str, str] = {"1": "0.0050", "1212": "0.0100", "44": "0.0200", "4420": "0.0150"}
    for run in runs:
        for number in run.numbers:
            rates.setdefault(number[1:8], f"{rng.uniform(0.001, MAX_RATE):.4f}")
    codes = ["1", "33", "34", "39", "44", "49", "52", "55", "61", "81", "86", "91"]
    while len(rates) < size + 4:
        prefix = rng.choice(codes) + "".join(rng.choices("0123456789", k=rng.randint(2, 7)))
        rates.setdefault(prefix, f"{rng.uniform(0.001, MAX_RATE):.4f}")
    lines = ["prefix,rate,description"] + [f"{p},{r},bench" for p, r in sorted(rates.items())]
    path.write_text("\n".join(lines) + "\n")
    return len(rates)


def load_deck(url: str, deck: Path, size: int) -> None:
    started = time.perf_counter()
    trunkline_cli(url, "rates", "import", str(deck))
    print(f"  rate deck: {size:,} rates imported in {time.perf_counter() - started:.1f} s", flush=True)


# --- the edge and its upstream ------------------------------------------------------------------


@dataclass
class Uas:
    stats: Path  # its -trace_stat file
    pid: int


@contextlib.contextmanager
def upstream(port: int, workdir: Path) -> Iterator[Uas]:
    """The SIPp UAS the edge sends admitted calls to."""
    stats = workdir / "uas-stat.csv"
    cmd = [
        "sipp", "-sf", str(UAS), "-i", UPSTREAM_IP, "-p", str(port), "-nostdin",
        "-trace_stat", "-stf", str(stats), "-fd", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield Uas(stats, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def running_edge(settings: Settings) -> Iterator[EdgeService]:
    service = edge.service(settings).start_in_thread()
    try:
        yield service
    finally:
        service.stop_thread()


def wait_for_acl(rpc: RpcClient, runs: list[Run], timeout: float = 20.0) -> None:
    """Until the edge answering on `rpc` recognises every run's caller address as its connection."""
    want = {(run.address, run.conn_id) for run in runs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = [entry["item"] for entry in rpc.call("permissions.addressDump") or []]
        if want <= {(item["ip"], item["tag"]) for item in items}:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the edge's ACL lacks some caller addresses after {timeout:.0f} s")


def last_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat file, by column name."""
    if not path.exists():
        return {}
    rows = [line.split(";") for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def counter(stats: dict[str, str], name: str) -> int:
    try:
        return int(stats.get(name, "0") or 0)
    except ValueError:
        return 0


# --- where the CPU went -------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of a process; (0, 0.0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0, 0.0
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def kamailio_cpu(main_pid: int | None) -> float:
    """CPU seconds of Kamailio: its main process and the workers it forked."""
    if main_pid is None:
        return 0.0
    total = proc_cpu(main_pid)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid, seconds = proc_cpu(int(entry.name))
            total += seconds if ppid == main_pid else 0.0
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped for full socket receive buffers, machine-wide (Udp RcvbufErrors)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = (row for row in rows if row[0] == "Udp:")
    return int(dict(zip(names, values, strict=False)).get("RcvbufErrors", 0))


@dataclass
class Cpu:
    """CPU seconds spent so far, by whom, and the machine's UDP drops."""

    machine_busy: float
    machine_total: float
    kamailio: float
    trunkline: float  # this process: the call-log importer and the reconciler, on the edge's thread
    sipp: float  # the UAC (a waited child) and the UAS
    udp_drops: int

    @classmethod
    def now(cls, service: EdgeService, uas: Uas) -> Cpu:
        busy, total = machine_cpu()
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            machine_busy=busy,
            machine_total=total,
            kamailio=kamailio_cpu(service.supervisor.pid),
            trunkline=me.ru_utime + me.ru_stime,
            sipp=children.ru_utime + children.ru_stime + proc_cpu(uas.pid)[1],
            udp_drops=udp_receive_drops(),
        )


def cpu_use(before: Cpu, after: Cpu, calls: int) -> str:
    """How busy the machine was, and CPU milliseconds per call placed by each party."""
    busy = after.machine_busy - before.machine_busy
    share = busy / max(after.machine_total - before.machine_total, 1e-9)
    parts = {
        "kamailio": after.kamailio - before.kamailio,
        "trunkline": after.trunkline - before.trunkline,
        "SIPp": after.sipp - before.sipp,
    }
    parts["other (PostgreSQL, other work)"] = max(0.0, busy - sum(parts.values()))
    per_call = ", ".join(f"{name} {seconds * 1000 / max(calls, 1):.2f}" for name, seconds in parts.items())
    drops = after.udp_drops - before.udp_drops
    return f"cpu: machine {share:.0%} busy; ms per call: {per_call}; UDP receive-buffer drops: {drops}"


def shared_memory(rpc: RpcClient) -> str:
    """Kamailio's shared memory pool (core.shmmem): in use now and at most, of its size."""
    try:
        shm = rpc.call("core.shmmem")
    except Exception as exc:  # a benchmark reports what it could not read, and goes on
        return f"shm: unknown ({exc})"
    mb = 1024 * 1024
    return (
        f"Kamailio shm: {int(shm['used']) / mb:.0f} MB used, at most {int(shm['max_used']) / mb:.0f}"
        f" of {int(shm['total']) / mb:.0f} MB"
    )


# --- one run ------------------------------------------------------------------------------------


def place_calls(
    run: Run, sip_port: int, args: argparse.Namespace, workdir: Path, host: str = "127.0.0.1"
) -> Result:
    """The run's calls from its address to the edge on host:sip_port, with SIPp; waits for the end."""
    workdir.mkdir()
    csv = workdir / "numbers.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in run.numbers))
    stats = workdir / "stat.csv"
    budget = args.seconds * 3 + 30
    cmd = [
        "sipp", f"{host}:{sip_port}", "-sf", str(UAC), "-inf", str(csv),
        "-r", str(run.rate), "-m", str(len(run.numbers)), "-l", str(run.rate * 5), "-d", str(args.hold_ms),
        "-i", run.address, "-p", str(free_port(run.address)), "-nostdin", "-recv_timeout", "5000",
        "-timeout", f"{budget}s", "-trace_stat", "-stf", str(stats), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "1",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=budget + 30)
    result = Result(run, elapsed=time.perf_counter() - start)
    last = last_stats(stats)
    result.placed = counter(last, "OutgoingCall(C)")
    result.failed = counter(last, "FailedCall(C)")
    result.unexpected = counter(last, "FailedUnexpectedMessage(C)")
    result.timeouts = counter(last, "FailedTimeoutOnRecv(C)")
    result.retransmissions = counter(last, "Retransmissions(C)")
    stamps = read_response_times(workdir, result.times)
    if len(stamps) > 1 and max(stamps) > min(stamps):
        result.per_second = (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000)
    return result


def read_response_times(workdir: Path, times: dict[str, list[float]]) -> list[float]:
    """Each call's response times from SIPp's -trace_rtt file(s) (date_ms;rtt_ms;name), into `times`
    by name ("admitted", "refused"); returns the dates, in ms."""
    stamps: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.strip().split(";")
            if len(parts) < 3:
                continue
            try:
                date, rtt = float(parts[0]), float(parts[1])
            except ValueError:
                continue  # the header
            times.setdefault(parts[2], []).append(rtt)
            stamps.append(date)
    return stamps


async def _record_counts(url: str, conn_id: str) -> dict[tuple[Any, ...], int]:
    db = Database(url)
    try:
        async with db.transaction() as conn:
            stmt = sa.text(
                "SELECT state, sip_status, d_code, COUNT(*) AS n FROM call_record"
                " WHERE connection_id = :c GROUP BY state, sip_status, d_code"
            ).bindparams(c=conn_id)
            rows = (await conn.execute(stmt)).all()
            return {(r[0], r[1], r[2]): int(r[3]) for r in rows}
    finally:
        await db.dispose()


def check_records(url: str, result: Result, timeout: float, stall: float = 10.0) -> None:
    """Wait until the connection has one finished record per call SIPp placed; give up at `timeout`,
    or once nothing has changed for `stall` seconds (the importer is done: the rest is not coming)."""
    want = result.placed
    start = changed = shown = time.monotonic()
    seen: dict[tuple[Any, ...], int] = {}
    while True:
        counts = asyncio.run(_record_counts(url, result.run.conn_id))
        total = sum(counts.values())
        finished = sum(n for key, n in counts.items() if key[0] == "finished")
        now = time.monotonic()
        if counts != seen:
            seen, changed = counts, now
        if (total >= want and finished == total) or now - start > timeout or now - changed > stall:
            break
        if now - shown > 5:
            print(f"    waiting for the importer: {finished}/{want} records finished", flush=True)
            shown = now
        time.sleep(0.25)
    result.records, result.records_ok = describe_records(counts, want, result.run.refusals)


def describe_records(counts: dict[tuple[Any, ...], int], want: int, refusals: int) -> tuple[str, bool]:
    """Finished records / calls placed ("N/N"), and what is missing, unfinished or unexpected."""
    total = sum(counts.values())
    finished = sum(n for key, n in counts.items() if key[0] == "finished")
    admitted, refused = counts.get(ADMITTED, 0), counts.get(REFUSED, 0)
    others = {k: n for k, n in counts.items() if k not in (ADMITTED, REFUSED)}
    text = f"{finished}/{want}"
    if total < want:
        text += f" ({want - total} missing)"
    for (state, status, code), n in others.items():
        text += f", {n} {state} {status} {code or ''}".rstrip()
    if refused != refusals or admitted != want - refusals:
        text += f" (200: {admitted}, D13: {refused}; expected {want - refusals} and {refusals})"
    return text, total == want == finished and not others and refused == refusals


def kamailio_errors(log: Path, start: int) -> list[str]:
    if not log.exists():
        return []
    with log.open("rb") as f:
        f.seek(start)
        new = f.read().decode(errors="replace")
    marks = (" ERROR", "CRITICAL", "ALERT", " BUG")
    return [line for line in new.splitlines() if any(m in line for m in marks)]


def error_kinds(lines: list[str]) -> list[tuple[int, str]]:
    """Kamailio's error lines by kind, most frequent first: the level, module and message, without
    the process, the call, addresses and numbers."""
    kinds: dict[str, int] = {}
    for line in lines:
        text = re.sub(r"^\s*\d+\(\d+\)\s*", "", line)
        text = re.sub(r"\{[^}]*\}\s*", "", text)
        text = re.sub(r"(for dlg|with clid|qm_\w+\().*", r"\1 ...", text)
        text = re.sub(r"(\.c:)\d+", r"\1N", text)
        text = re.sub(r"0x[0-9a-f]+|\b\d{3,}\b", "N", text)[:150]
        kinds[text] = kinds.get(text, 0) + 1
    return sorted(((n, kind) for kind, n in kinds.items()), reverse=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN when there is nothing."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency(values: list[float]) -> str:
    if not values:
        return "none"
    mean = sum(values) / len(values)
    return f"p50 {percentile(values, 50):.0f} ms, p99 {percentile(values, 99):.0f} ms, mean {mean:.2f} ms"


def describe(result: Result) -> str:
    run, t = result.run, result.times
    admitted, refused = t.get("admitted", []), t.get("refused", [])
    text = (
        f"  policy {run.mode:3} offered {run.rate:>4}/s: {result.per_second:6.1f}/s achieved"
        f" ({result.elapsed:.1f} s), {result.placed} placed, {len(admitted)} admitted, {len(refused)}"
        f" refused, {result.failed} failed ({result.unexpected} unexpected, {result.timeouts} timed out),"
        f" {result.retransmissions} retransmissions\n"
        f"    setup admitted {latency(admitted)}"
    )
    if refused:
        text += f"; refused {latency(refused)}"
    text += f"; upstream answered {result.upstream}; records: {result.records}"
    return text


def measure(
    run: Run, url: str, service: EdgeService, sip_port: int, uas: Uas, tmp: Path, args: argparse.Namespace
) -> Result:
    log = service.supervisor.log_path
    log_start = log.stat().st_size if log.exists() else 0
    upstream_before = counter(last_stats(uas.stats), "SuccessfulCall(C)")
    print(f"  policy {run.mode} at {run.rate}/s for {args.seconds} s from {run.address} ...", flush=True)
    before = Cpu.now(service, uas)
    result = place_calls(run, sip_port, args, tmp / f"run-{run.mode}-{run.rate}")
    result.cpu = cpu_use(before, Cpu.now(service, uas), result.placed)
    check_records(url, result, args.records_timeout)
    time.sleep(1.2)  # the UAS writes its statistics every second
    result.upstream = counter(last_stats(uas.stats), "SuccessfulCall(C)") - upstream_before
    result.kamailio_errors = kamailio_errors(log, log_start)
    print(describe(result), flush=True)
    print(f"    {result.cpu}; {shared_memory(service.supervisor.rpc)}", flush=True)
    if result.kamailio_errors:
        first = result.kamailio_errors[0].strip()
        print(f"    kamailio.log: {len(result.kamailio_errors)} error lines; the first: {first}")
        for n, kind in error_kinds(result.kamailio_errors)[:8]:
            print(f"      {n:6} x {kind}")
    return result


# --- the table ------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f}"


def ratio(on: list[float], off: list[float], p: float) -> str:
    a, b = percentile(on, p), percentile(off, p)
    return f"{a / b:.2f}" if b and not math.isnan(a) and not math.isnan(b) else "-"


def short(records: str) -> str:
    """The finished/placed count that leads a records description."""
    return records.split(" ", 1)[0].rstrip(",")


def table(backend: str, results: list[Result]) -> None:
    print(f"\n{backend}: setups/s achieved, setup latency p50 / p99 ms (admitted calls; refused apart)")
    print(
        "| offered/s | off: setups/s | off: p50 / p99 | on: setups/s | on: admitted p50 / p99"
        " | on: refused p50 / p99 | on/off p50 | on/off p99 | failed off/on | records off, on |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    by = {(r.run.mode, r.run.rate): r for r in results}
    for rate in sorted({r.run.rate for r in results}):
        off, on = by.get(("off", rate)), by.get(("on", rate))
        if off is None or on is None:
            continue
        off_t, on_t = off.times.get("admitted", []), on.times.get("admitted", [])
        print(
            f"| {rate} | {off.per_second:.0f} | {ms(off_t)} | {on.per_second:.0f} | {ms(on_t)}"
            f" | {ms(on.times.get('refused', []))} | {ratio(on_t, off_t, 50)} | {ratio(on_t, off_t, 99)}"
            f" | {off.failed} / {on.failed} | {short(off.records)}, {short(on.records)} |"
        )
    bad = [r for r in results if not r.records_ok or r.failed or r.kamailio_errors]
    for r in bad:
        print(
            f"  ! policy {r.run.mode} at {r.run.rate}/s: records {r.records}, {r.failed} failed,"
            f" {len(r.kamailio_errors)} kamailio.log error lines"
        )


# --- a backend ------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    tmp = Path(tempfile.mkdtemp(prefix=f"tl-bench-calls-{backend}-"))
    try:
        with database(backend, tmp) as url:
            runs = plan(args)
            asyncio.run(write(url, lambda conn: create_connections(conn, runs)))
            trunkline_cli(url, "accounts", "set-limits", "--user-id", USERS["on"],
                          "--concurrent-calls", str(HIGH_LIMIT))  # fmt: skip
            deck = tmp / "deck.csv"
            deck_size = write_deck(deck, args.deck, [r for r in runs if r.mode == "on"])
            sip_port, up_port = free_port("127.0.0.1"), free_port(UPSTREAM_IP)
            settings = Settings(
                database_url=url, sip_dir=tmp / "sip", sip_port=sip_port, sip_tls_port=0, sip_realm=REALM,
                sip_upstream=f"{UPSTREAM_IP}:{up_port}", sip_children=args.children,
                sip_poll_seconds=0.1, access_log=False, sip_database_url=kamailio_url(backend, url),
            )  # fmt: skip
            with upstream(up_port, tmp) as uas, running_edge(settings) as service:
                wait_for_acl(service.supervisor.rpc, runs)
                load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
                print(
                    f"\n== {backend}: Kamailio on {sip_port} ({args.children} SIP workers), upstream"
                    f" {UPSTREAM_IP}:{up_port}, {len(runs)} runs of {args.seconds} s; load average {load}"
                )
                results = []
                deck_loaded = False
                for run in runs:
                    if run.mode == "on" and not deck_loaded:
                        load_deck(url, deck, deck_size)
                        deck_loaded = True
                    results.append(measure(run, url, service, sip_port, uas, tmp, args))
                restarts = service.supervisor.restarts
                if restarts:
                    print(f"  ! the supervisor restarted Kamailio {restarts} times during the runs")
            table(backend, results)
            return results
    finally:
        if args.keep:
            print(f"  kept {tmp} (kamailio.log in sip/, SIPp's files in run-*/)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=[100, 200, 300, 500]
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--deck", type=int, default=100_000, help="generated rate deck prefixes")
    parser.add_argument("--refused", type=float, default=0.1, help="share of policy-on calls refused (D13)")
    parser.add_argument("--hold-ms", type=int, default=0, help="how long an admitted call stays up")
    parser.add_argument("--children", type=int, default=Settings.model_fields["sip_children"].default)
    parser.add_argument("--records-timeout", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory and its logs")
    args = parser.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    if not 0 <= args.refused < 1:
        sys.exit("--refused is a share: 0 <= value < 1")
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the edge and the UAS and drop the database.
    signal.signal(signal.SIGTERM, _interrupt)
    failures = 0
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        results = run_backend(backend, args)
        failures += sum(1 for r in results if not r.records_ok or r.failed or r.kamailio_errors)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
