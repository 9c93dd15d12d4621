"""Benchmark of trunkline as a test fixture: start-up, accounts, reset/snapshot/restore, journal overhead.

    python benchmarks/testing.py                 # the defaults below, about half a minute
    python benchmarks/testing.py --connections 1000 --starts 5 --accounts 200 --gets 3000

Measures, each as a median (the table says of how many):

- `serve --ephemeral` start: from spawning `python -m trunkline serve --ephemeral --port 0` to its
  ready line on stdout (the server then accepts connections);
- `new_account()`: `POST /_trunkline/accounts` with the admin token, through trunkline.testing;
- reset, snapshot (`GET /_trunkline/state`) and restore (`PUT /_trunkline/state`) of an account holding
  `--connections` credential connections (created once through the API, then restored before each
  reset);
- GET of a credential connection by id, one keep-alive connection, on the ephemeral server (control
  API on: the request journal records it and the account's empty fault list is consulted) beside the
  same request on `trunkline serve` with the control API off; rounds alternate between the two so a
  busy machine slows both alike.

Everything it starts is stopped and every temporary file removed when it ends, also on Ctrl-C.
The aims are printed beside the figures: ready < 1 s, an account < 5 ms, the reset < 100 ms, the
journal's overhead < 10 %.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from trunkline.testing import Account, TrunklineServer

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], object], n: int, before: Callable[[], object] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------------------------------
# Start-up


def ready_time(tmp: Path) -> float:
    """Seconds from spawning `serve --ephemeral --port 0` to its ready line."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "serve", "--ephemeral", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - t0
        if not line.startswith("trunkline ready "):
            raise SystemExit(f"serve --ephemeral gave no ready line (exit {proc.wait(timeout=10)})")
        return elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


# ---------------------------------------------------------------------------------------------------
# HTTP


class Api:
    """A keep-alive JSON client (standard library only)."""

    def __init__(self, base_url: str, key: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname or HOST, parts.port or 80
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=payload, headers=self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def ok(self, method: str, path: str, body: object | None = None) -> dict:
        status, raw = self.call(method, path, body)
        if status >= 300:
            raise SystemExit(f"{method} {path} answered {status}: {raw[:500]!r}")
        doc: dict = json.loads(raw) if raw else {}
        return doc

    def close(self) -> None:
        self.conn.close()


def seed(api: Api, count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    ids = []
    for i in range(count):
        doc = api.ok(
            "POST",
            "/v2/credential_connections",
            {"connection_name": f"office-{i:05d}", "user_name": f"b{run}n{i}", "password": "seed-password-1"},
        )
        ids.append(doc["data"]["id"])
    return ids


@contextlib.contextmanager
def control_off_server(tmp: Path, key: str) -> Iterator[str]:
    """`trunkline serve` (control API off) on a database in `tmp`, with `key`; yields its /v2 URL."""
    port = free_port()
    env = {
        **os.environ,
        "TRUNKLINE_DATABASE_URL": f"sqlite:///{tmp / 'off.db'}",
        "TRUNKLINE_CONTROL": "false",
        "TRUNKLINE_RATE_LIMIT": "1000000/second",
    }
    log = (tmp / "off.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trunkline",
            "serve",
            "--port",
            str(port),
            "--api-key",
            key,
            "--user-id",
            "bench",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=2)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"serve (control off) did not start:\n{(tmp / 'off.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)
        yield f"http://{HOST}:{port}/v2"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def get_rounds(
    apis: dict[str, Api], ids: dict[str, list[str]], total: int, rounds: int
) -> dict[str, list[float]]:
    """Per-request seconds of GET by id for each server, alternating rounds between them."""
    samples: dict[str, list[float]] = {name: [] for name in apis}
    per_round = max(1, total // rounds)
    for r in range(rounds + 1):
        for name, api in apis.items():
            chosen = ids[name]
            for i in range(per_round):
                path = f"/v2/credential_connections/{chosen[i % len(chosen)]}"
                t0 = time.perf_counter()
                status, _ = api.call("GET", path)
                elapsed = time.perf_counter() - t0
                if status != 200:
                    raise SystemExit(f"GET {path} on {name} answered {status}")
                if r:  # round 0 warms up both
                    samples[name].append(elapsed)
    return samples


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", type=int, default=5, help="serve --ephemeral starts to time (5)")
    p.add_argument("--accounts", type=int, default=200, help="new_account() calls to time (200)")
    p.add_argument("--connections", type=int, default=1000, help="connections in the reset account (1000)")
    p.add_argument("--repeats", type=int, default=5, help="resets, snapshots and restores to time (5)")
    p.add_argument("--gets", type=int, default=3000, help="GETs by id per server (3000)")
    opts = p.parse_args(argv)

    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="trunkline-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"timing {opts.starts} starts of serve --ephemeral ...", flush=True)
        starts = [ready_time(tmp) for _ in range(opts.starts)]
        rows.append(
            ("serve --ephemeral to ready", f"{median_ms(starts):.0f} ms", f"of {opts.starts}", "< 1000 ms")
        )

        # PUT /_trunkline/state takes the 2 MiB document of 1,000 credential connections as it is
        # (TRUNKLINE_CONTROL_MAX_BODY_BYTES); only the rate limit is lifted for the timing loops.
        env = {"TRUNKLINE_RATE_LIMIT": "1000000/second"}
        with TrunklineServer(env=env) as server:
            server.new_account()  # the first call opens the keep-alive connection
            made: list[Account] = []
            accounts = timed(lambda: made.append(server.new_account()), opts.accounts)
            rows.append(("new_account()", f"{median_ms(accounts):.2f} ms", f"of {opts.accounts}", "< 5 ms"))

            account = server.new_account()
            api = Api(account.base_url, account.key)
            print(f"seeding {opts.connections} credential connections through the API ...", flush=True)
            seed(api, opts.connections)
            document = account.snapshot()
            assert len(document["connections"]) == opts.connections
            size = len(json.dumps(document).encode())
            # Restore before each reset: every reset deletes the full account.
            resets = timed(account.reset, opts.repeats, before=lambda: account.restore(document))
            restores = timed(lambda: account.restore(document), opts.repeats)
            snapshots = timed(account.snapshot, opts.repeats)
            n = f"{opts.connections:,} connections"
            rows.append((f"reset ({n})", f"{median_ms(resets):.1f} ms", f"of {opts.repeats}", "< 100 ms"))
            rows.append(
                (f"snapshot, GET state ({n})", f"{median_ms(snapshots):.1f} ms", f"of {opts.repeats}", "")
            )
            rows.append(
                (
                    f"restore, PUT state ({n}, {size / 2**20:.1f} MiB)",
                    f"{median_ms(restores):.1f} ms",
                    f"of {opts.repeats}",
                    "",
                )
            )

            # GET by id: journal on (this server) vs control off (another server, same data shape).
            on_ids = [c["id"] for c in document["connections"]][:200]
            key = f"bench-key-{uuid.uuid4().hex}"
            with control_off_server(tmp, key) as off_url:
                off = Api(off_url, key)
                print("seeding the control-off server ...", flush=True)
                off_ids = seed(off, 200)
                print(f"timing {opts.gets} GETs by id on each server ...", flush=True)
                on = Api(account.base_url, account.key)
                samples = get_rounds({"on": on, "off": off}, {"on": on_ids, "off": off_ids}, opts.gets, 10)
                on.close()
                off.close()
            api.close()
        m_on, m_off = median_ms(samples["on"]), median_ms(samples["off"])
        mean_on = statistics.fmean(samples["on"]) * 1000
        mean_off = statistics.fmean(samples["off"]) * 1000
        rows.append(("GET by id, control off", f"{m_off:.3f} ms", f"of {len(samples['off'])}", ""))
        rows.append(
            ("GET by id, journal on + empty faults", f"{m_on:.3f} ms", f"of {len(samples['on'])}", "")
        )
        rows.append(
            (
                "journal overhead (median; mean)",
                f"{(m_on / m_off - 1) * 100:+.1f} %; {(mean_on / mean_off - 1) * 100:+.1f} %",
                "ratio - 1",
                "< 10 %",
            )
        )

    header = ("measure", "figure", "median", "aim")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for i, r in enumerate([header, *rows]):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"\n{os.cpu_count()} CPUs, load average {load:.2f}; SQLite; one keep-alive connection per measure")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
