"""SIP edge benchmark: REGISTER-with-digest per second, and how fast API writes reach the edge.

    python -m benchmarks.sip_register [--backend sqlite|postgresql|both] [--users 1000]
                                      [--rates 500,1000,2000] [--seconds 5] [--repeats 10]

For each backend it starts a real edge (Kamailio supervised by trunkline, as `trunkline sip` does) on
loopback with a fresh database, then:

1. throughput: SIPp registers `--users` distinct credential connections (401 challenge, then 200) at
   each offered rate for `--seconds`; it prints the achieved successful REGISTER transactions per
   second (each one is two SIP round trips) and Kamailio's own accepted/rejected counters;
2. propagation: the time from the commit of a write the API makes (the same store calls) to the edge
   enforcing it, measured with a small Python SIP client polling every millisecond:
   - credential: a new credential connection → first REGISTER answered 200;
   - IP: a new IP on an IP connection → first INVITE from that address no longer refused with 403.

Everything runs on this machine and stops by itself; rates and counts are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._postgres import scratch_database as postgres_scratch
from trunkline import edge
from trunkline.config import Settings
from trunkline.resources import connections
from trunkline.resources.connections import kinds
from trunkline.store import changes, ids, migrate
from trunkline.store import ips as store_ips
from trunkline.store.db import Database

HERE = Path(__file__).parent
REALM = "sip.bench.test"
PASSWORD = "bench-password-1"
PG = os.environ.get("TRUNKLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host (Kamailio listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with contextlib.suppress(OSError), socket.socket() as tcp:
                tcp.bind((host, port))
                return port
    raise RuntimeError(f"no free port on {host}")


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        migrate.upgrade(url)
        yield url
        return
    with postgres_scratch(PG, "trunkline_bench") as url:
        migrate.upgrade(url)
        yield url


def kamailio_url(backend: str, url: str) -> str | None:
    """On PostgreSQL Kamailio logs in as the role migration 0002 made for it, as deployed; on SQLite
    it opens the API's file (None: the API's own URL)."""
    return url.replace("//postgres@", "//trunkline_kamailio@", 1) if backend != "sqlite" else None


async def write(url: str, work: Any) -> Any:
    db = Database(url)
    try:
        async with db.transaction(write=True) as conn:
            return await work(conn)
    finally:
        await db.dispose()


def create_users(url: str, count: int) -> list[str]:
    users = [f"b{i:05d}{secrets.token_hex(3)}" for i in range(count)]

    async def work(conn: Any) -> None:
        for user in users:
            body = {"connection_name": user, "user_name": user, "password": PASSWORD}
            await connections.create(conn, "bench", kinds.CREDENTIAL, body, realm=REALM)

    asyncio.run(write(url, work))
    return users


# --- a minimal SIP client, for sub-millisecond polling ------------------------------------------


class SipClient:
    def __init__(self, server: tuple[str, int], local_ip: str = "127.0.0.1") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.sock.settimeout(2.0)
        self.local = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def _request(self, method: str, uri: str, user: str, cseq: int, call_id: str, extra: str = "") -> str:
        host, port = self.local
        return (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{REALM}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{user if method == 'REGISTER' else '15550001111'}@{REALM}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{user}@{host}:{port}>\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )

    def _send(self, text: str) -> str:
        self.sock.sendto(text.encode(), self.server)
        while True:
            reply = self.sock.recv(65535).decode(errors="replace")
            if not reply.startswith("SIP/2.0 100"):
                return reply

    def register(self, user: str, password: str) -> int:
        """One REGISTER with digest auth; the final status code."""
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        call_id = uuid.uuid4().hex
        challenge = self._send(self._request("REGISTER", uri, user, 1, call_id, "Expires: 60\r\n"))
        code = int(challenge.split(" ", 2)[1])
        if code != 401:
            return code
        params = dict(
            re.findall(r'(\w+)="?([^",\r\n]+)"?', challenge.split("WWW-Authenticate: Digest", 1)[1])
        )
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1 = md5(f"{user}:{params['realm']}:{password}")
        cnonce, nc = secrets.token_hex(4), "00000001"
        response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{md5(f'REGISTER:{uri}')}")
        auth = (
            f'Authorization: Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}",'
            f' uri="{uri}", response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
        )
        final = self._send(self._request("REGISTER", uri, user, 2, call_id, f"Expires: 60\r\n{auth}"))
        return int(final.split(" ", 2)[1])

    def invite(self) -> int:
        uri = f"sip:15550001111@{self.server[0]}:{self.server[1]}"
        reply = self._send(self._request("INVITE", uri, "caller", 1, uuid.uuid4().hex))
        return int(reply.split(" ", 2)[1])


def until(check: Any, timeout: float = 10.0) -> float:
    """Seconds until check() is true, polling as fast as the client answers."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
    raise RuntimeError("not enforced within the timeout")


# --- the measurements ---------------------------------------------------------------------------


def users_file(path: Path, users: list[str]) -> Path:
    """SIPp's -inf file: the users in turn, each with its digest credentials (register_auth.xml)."""
    lines = ["SEQUENTIAL"] + [f"{u};[authentication username={u} password={PASSWORD}];{REALM}" for u in users]
    path.write_text("\n".join(lines) + "\n")
    return path


def register_command(
    server: tuple[str, int], csv: Path, rate: int, total: int, seconds: int, stats: Path
) -> list[str]:
    """SIPp registering the users of `csv` at `rate`/s until `total` REGISTER+auth transactions, with
    its statistics in `stats`."""
    return [
        "sipp", f"{server[0]}:{server[1]}", "-sf", str(HERE / "sip" / "register_auth.xml"),
        "-inf", str(csv), "-r", str(rate), "-m", str(total), "-l", str(rate * 5),
        "-i", "127.0.0.1", "-p", str(free_port()), "-nostdin", "-recv_timeout", "5000",
        "-timeout", f"{seconds * 4 + 20}s", "-trace_stat", "-stf", str(stats), "-fd", "1",
    ]  # fmt: skip


def throughput(sip_port: int, users: list[str], rate: int, seconds: int, tmp: Path) -> dict[str, float]:
    csv = users_file(tmp / "users.csv", users)
    total = rate * seconds
    stats = tmp / f"stat-{rate}.csv"
    cmd = register_command(("127.0.0.1", sip_port), csv, rate, total, seconds, stats)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=seconds * 4 + 60)
    elapsed = time.perf_counter() - start
    header, *rows = [line.split(";") for line in stats.read_text().splitlines() if line.strip()]
    last = dict(zip(header, rows[-1], strict=False))
    ok = int(last.get("SuccessfulCall(C)", 0))
    failed = int(last.get("FailedCall(C)", 0))
    return {"offered": rate, "ok": ok, "failed": failed, "per_second": ok / elapsed, "elapsed": elapsed}


def kamailio_counters(service: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in service.supervisor.rpc.call("stats.get_statistics", "registrar:") or []:
        name, _, value = str(line).partition(" = ")
        out[name.split(":", 1)[-1]] = int(value or 0)
    return out


def propagation(url: str, sip_port: int, repeats: int) -> dict[str, list[float]]:
    server = ("127.0.0.1", sip_port)
    cred, ip = [], []
    for i in range(repeats):
        user = f"p{i}{secrets.token_hex(4)}"
        body = {"connection_name": user, "user_name": user, "password": PASSWORD}
        asyncio.run(
            write(url, lambda c, b=body: connections.create(c, "bench", kinds.CREDENTIAL, b, realm=REALM))
        )
        client = SipClient(server)
        try:
            cred.append(until(lambda u=user, c=client: c.register(u, PASSWORD) == 200))
        finally:
            client.close()

        address = f"127.0.{100 + i // 200}.{1 + i % 200}"
        conn_id = asyncio.run(
            write(
                url,
                lambda c: connections.create(c, "bench", kinds.IP, {"connection_name": "pbx"}, realm=REALM),
            )
        )["id"]
        time.sleep(1.2)  # let the reload the connection itself caused pass, so only the IP is measured

        async def add_ip(conn: Any, a: str = address, cid: str = conn_id) -> None:
            stamp = ids.now()
            await store_ips.insert(
                conn, id=ids.uuid_id(), user_id="bench", connection_id=cid, ip_address=a, port=5060,
                created_at=stamp, updated_at=stamp,
            )  # fmt: skip
            await changes.bump(conn, changes.ACL)

        client = SipClient(server, local_ip=address)
        try:
            assert client.invite() == 403, "the address must be foreign before the write"
            asyncio.run(write(url, add_ip))
            ip.append(until(lambda c=client: c.invite() != 403))
        finally:
            client.close()
    return {"credential": cred, "ip": ip}


def run_backend(backend: str, args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"tl-bench-{backend}-"))
    try:
        with database(backend, tmp) as url:
            users = create_users(url, args.users)
            sip_port = free_port()
            settings = Settings(
                database_url=url, sip_dir=tmp / "sip", sip_port=sip_port, sip_tls_port=0, sip_realm=REALM,
                sip_poll_seconds=0.1, access_log=False, sip_database_url=kamailio_url(backend, url),
            )  # fmt: skip
            service = edge.service(settings).start_in_thread()
            try:
                workers = settings.sip_children
                print(f"\n== {backend}: Kamailio on {sip_port}, {args.users} users, {workers} SIP workers")
                for rate in args.rates:
                    r = throughput(sip_port, users, rate, args.seconds, tmp)
                    print(
                        f"REGISTER+auth offered {r['offered']:>5}/s: {r['per_second']:7.0f}/s achieved,"
                        f" {r['ok']} ok, {r['failed']} failed, {r['elapsed']:.1f} s"
                    )
                print("kamailio registrar counters:", kamailio_counters(service))
                p = propagation(url, sip_port, args.repeats)
                for what, values in p.items():
                    ms = [v * 1000 for v in values]
                    print(
                        f"API write -> edge enforces ({what:10}): median {statistics.median(ms):7.1f} ms,"
                        f" max {max(ms):7.1f} ms, n={len(ms)}"
                    )
            finally:
                service.stop_thread()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[500, 1000, 2000])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp is not installed: apt-get install -y sip-tester")
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        run_backend(backend, args)


if __name__ == "__main__":
    main()
