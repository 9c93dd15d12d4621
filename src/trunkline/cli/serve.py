"""`trunkline serve`: the API server, on a database of its own or on a throw-away one (`--ephemeral`)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn

from trunkline.cli import sip as cli_sip
from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._protocol import GuardedHttpToolsProtocol
from trunkline.cli.logs import configure_logging
from trunkline.config import Settings
from trunkline.errors import TelnyxError, TelnyxErrors, entries_of
from trunkline.http import front_door
from trunkline.resources import api_keys, state
from trunkline.store import migrate
from trunkline.store.db import Conn

log = logging.getLogger("trunkline")

# What `--ephemeral` sets when the environment does not say otherwise. A test suite runs from one
# address (loopback) and may test its 401 handling on purpose: the production lockout of 30 failed
# authentications a minute would then lock every test out (README.md, TRUNKLINE_AUTH_FAILURE_LIMIT).
# Its webhook receiver is on the same machine, which a shared server must refuse (docs/webhooks.md).
EPHEMERAL_DEFAULTS = {"TRUNKLINE_AUTH_FAILURE_LIMIT": "100000", "TRUNKLINE_WEBHOOK_ALLOW_PRIVATE": "true"}
_PRINTABLE = re.compile(r"[!-~]+")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(envvar="TRUNKLINE_HOST")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="TRUNKLINE_PORT", help="0 picks a free port (the ready line says which).")
    ] = 8080,
    database_url: DatabaseUrl = DEFAULT_URL,
    workers: Annotated[int, typer.Option(envvar="TRUNKLINE_WORKERS", min=1)] = 1,
    log_level: Annotated[str, typer.Option(envvar="TRUNKLINE_LOG_LEVEL")] = "info",
    sip: Annotated[bool, typer.Option("--sip", help="Also run the SIP edge (Kamailio).")] = False,
    sip_host: cli_sip.SipHost = "127.0.0.1",
    sip_port: cli_sip.SipPort = 5060,
    sip_dir: cli_sip.SipDir = None,
    sip_upstream: cli_sip.SipUpstream = None,
    ephemeral: Annotated[
        bool,
        typer.Option(
            "--ephemeral",
            help="A throw-away SQLite database, deleted at exit; the control API on; one worker. Prints"
            " `trunkline ready url=... key=... user_id=... admin_token=...` on stdout once it accepts"
            " connections.",
        ),
    ] = False,
    control: Annotated[
        bool,
        typer.Option(
            "--control",
            envvar="TRUNKLINE_CONTROL",
            help="Serve the control API under /_trunkline/ (on with --ephemeral).",
        ),
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="TRUNKLINE_BOOTSTRAP_KEY",
            help="Create this API key (20-200 printable ASCII characters, no spaces) for --user-id"
            " before serving, unless it exists. With --ephemeral and no key, one is generated.",
            show_default=False,
        ),
    ] = None,
    user_id: Annotated[str, typer.Option("--user-id", help="The account of --api-key and --seed.")] = "test",
    seed: Annotated[
        Path | None,
        typer.Option(
            "--seed",
            help="A state document (GET /_trunkline/state) that replaces the records of --user-id"
            " before serving.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the API on HOST:PORT, applying database migrations first."""
    configure_logging(log_level)
    if ephemeral:
        explicit = [
            f"--{name.replace('_', '-')}"
            for name in ("database_url", "workers", "sip")
            # Typer's ParameterSource lives in a private module; its member names are click's.
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        ]
        # Set on the command line they contradict --ephemeral; from TRUNKLINE_* variables (a CI
        # environment made for another server) they are ignored.
        if explicit:
            typer.echo(
                f"error: --ephemeral runs one API worker on a database of its own; drop {', '.join(explicit)}"
                " (or drop --ephemeral to serve a database you keep).",
                err=True,
            )
            raise typer.Exit(2)
        _serve_ephemeral(host, port, log_level, api_key or None, user_id, seed)
        return
    if control:
        os.environ["TRUNKLINE_CONTROL"] = "true"
    # The remaining settings (timeouts, limits) come from TRUNKLINE_* variables, as in the workers.
    settings = _checked_settings(database_url)
    # Before anything is written: a malformed upstream gateway is refused here, naming it.
    sip_settings = (
        cli_sip.edge_settings(database_url, sip_host, sip_port, sip_dir, sip_upstream) if sip else None
    )
    if workers > 1 and not settings.redis_url:
        log.warning(
            "%d workers without TRUNKLINE_REDIS_URL: each worker counts rate limits on its own, so a key"
            " may make up to %d times TRUNKLINE_RATE_LIMIT; set TRUNKLINE_REDIS_URL for one budget",
            workers,
            workers,
        )
    migrate.upgrade(database_url)
    if api_key or seed is not None:
        _bootstrap(database_url, api_key or None, user_id, seed)
    if not run_in_transaction(database_url, api_keys.any_exist):
        log.warning(
            "no API keys yet: create one with `trunkline keys create --user-id <account> --database-url %s`",
            migrate.redact(database_url),
        )
    # Worker processes build their settings from the environment.
    os.environ["TRUNKLINE_DATABASE_URL"] = database_url
    os.environ["TRUNKLINE_LOG_LEVEL"] = log_level
    if sip_dir is not None:
        # The API reads registrations from the edge's directory (edge.registration_view).
        os.environ["TRUNKLINE_SIP_DIR"] = str(sip_dir)
    if sip_settings is not None:
        cli_sip.start_beside_api(sip_settings)
    log.info("serving the Telnyx v2 API on http://%s:%d/v2 (docs at /v2/docs)", host, port)
    uvicorn.run(
        "trunkline.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **_uvicorn_options(settings),
    )


def _checked_settings(database_url: str) -> Settings:
    settings = Settings(database_url=database_url)
    try:
        front_door.check_settings(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves trunkline, with or without --ephemeral."""
    return {
        "loop": "uvloop",
        # httptools with a read timeout and a head size cap (cli/_protocol.py); a partial of a
        # module-level class, so it pickles into worker processes. uvicorn only calls what it is given
        # to make each connection's protocol (uvicorn/config.py, Config.load), so a partial serves
        # where its annotation names a class.
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            read_timeout=settings.request_read_timeout_seconds,
            max_head_bytes=settings.max_header_bytes,
        ),
        "log_config": None,
        "access_log": False,
        # trunkline reads X-Forwarded-For itself, only from TRUNKLINE_TRUSTED_PROXIES: uvicorn's own
        # handling would believe any client on 127.0.0.1 and rewrite the peer address before we see it.
        "proxy_headers": False,
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }


# ---------------------------------------------------------------------------------------------------
# Keys and seed documents before serving


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _details(exc: TelnyxError | TelnyxErrors) -> str:
    errors = entries_of(exc)
    return "; ".join(
        f"{e.detail} (at {e.pointer})" if e.pointer not in (None, "/") else e.detail for e in errors
    )


def _read_seed(path: Path) -> Any:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"--seed {path}: not a JSON file ({exc}); save one with GET /_trunkline/state") from None
    # A document saved straight from GET /_trunkline/state still has its {"data": ...} envelope.
    if isinstance(document, dict) and set(document) == {"data"}:
        document = document["data"]
    return document


def _bootstrap(database_url: str, api_key: str | None, user_id: str, seed: Path | None) -> str | None:
    """Create --api-key (or, when `api_key` is "", a new key) and load --seed in one transaction;
    the key in clear, or None when none was asked for."""
    if api_key:
        try:
            api_keys.check_given_key(api_key)
        except TelnyxError as exc:
            raise _fail(f"--api-key / TRUNKLINE_BOOTSTRAP_KEY: {exc.detail}") from None
    document = _read_seed(seed) if seed is not None else None

    async def work(conn: Conn) -> str | None:
        secret = None
        try:
            if api_key:
                secret = (await api_keys.create_given(conn, key=api_key, user_id=user_id)).secret
            elif api_key == "":
                secret = (
                    await api_keys.create(conn, user_id=user_id, description="serve --ephemeral")
                ).secret
        except TelnyxError as exc:
            raise _BootstrapFailed(f"--api-key / TRUNKLINE_BOOTSTRAP_KEY: {exc.detail}") from None
        if document is not None:
            try:
                counts = await state.restore(conn, user_id, document)
            except (TelnyxError, TelnyxErrors) as exc:
                raise _BootstrapFailed(
                    f"--seed {seed}: {_details(exc)}; nothing was loaded. Fix the document, or save a"
                    " fresh one with GET /_trunkline/state."
                ) from None
            log.info("loaded %s into account %s: %s", seed, user_id, counts)
        return secret

    try:
        return run_in_transaction(database_url, work)
    except _BootstrapFailed as exc:
        raise _fail(str(exc)) from None


class _BootstrapFailed(Exception):
    """A bootstrap step failed; its message names the option to fix."""


# ---------------------------------------------------------------------------------------------------
# --ephemeral


class _Stop(Exception):
    """SIGTERM or SIGINT arrived: unwind, so the temporary database is removed on the way out."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise _Stop in the main thread until the block ends.

    While uvicorn serves, it installs its own handlers (a graceful shutdown), restores these when it
    is done and then raises the signal again (uvicorn/server.py, Server.capture_signals): it arrives
    here and unwinds the rest.
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _serve_ephemeral(
    host: str, port: int, log_level: str, api_key: str | None, user_id: str, seed: Path | None
) -> None:
    started = time.perf_counter()
    tmp: Path | None = None
    try:
        # The handlers go in first, so a signal at any later point still removes the directory.
        with _stop_on_signals():
            # TMPDIR decides where (Python's tempfile.gettempdir); nothing else is written outside it.
            tmp = Path(tempfile.mkdtemp(prefix="trunkline-ephemeral-"))
            _run_ephemeral(tmp, started, host, port, log_level, api_key, user_id, seed)
    except _Stop as exc:
        log.info("stopped by %s", exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("removed the ephemeral database in %s", tmp)


def _run_ephemeral(
    tmp: Path,
    started: float,
    host: str,
    port: int,
    log_level: str,
    api_key: str | None,
    user_id: str,
    seed: Path | None,
) -> None:
    database_url = f"sqlite:///{tmp / 'trunkline.db'}"
    for name, value in EPHEMERAL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # A server of its own: one process on a throw-away database shares nothing, and on a Redis it
    # would share the journal, the fault rules and the rate budgets of another server's same-named
    # accounts (the default `test`).
    if os.environ.pop("TRUNKLINE_REDIS_URL", None):
        log.info("--ephemeral ignores TRUNKLINE_REDIS_URL: it keeps its state in its own process")
    admin_token = os.environ.get("TRUNKLINE_ADMIN_TOKEN") or secrets.token_urlsafe(32)
    # The ready line is space-separated fields: neither value may hold a space. The user id rule is
    # the control API's (trunkline/control/auth.py, USER_ID_PATTERN).
    if not _PRINTABLE.fullmatch(user_id) or len(user_id) > 64:
        raise _fail(f"--user-id {user_id!r}: use 1 to 64 printable ASCII characters without spaces")
    if not _PRINTABLE.fullmatch(admin_token):
        raise _fail("TRUNKLINE_ADMIN_TOKEN holds a space or a non-ASCII character; choose one without")
    os.environ.update(
        TRUNKLINE_CONTROL="true",
        TRUNKLINE_ADMIN_TOKEN=admin_token,
        TRUNKLINE_DATABASE_URL=database_url,
        TRUNKLINE_LOG_LEVEL=log_level,
    )
    settings = _checked_settings(database_url)
    migrate.upgrade(database_url)
    key = _bootstrap(database_url, api_key or "", user_id, seed)
    assert key is not None  # _bootstrap mints one when api_key is ""
    log.info("ephemeral database at %s (removed at exit)", tmp)

    def ready(bound_port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "serving the Telnyx v2 API on http://%s:%d/v2, ready in %.0f ms",
            shown,
            bound_port,
            (time.perf_counter() - started) * 1000,
        )
        # The one line on stdout; logs go to stderr.
        sys.stdout.write(
            f"trunkline ready url=http://{shown}:{bound_port}/v2 key={key} user_id={user_id}"
            f" admin_token={admin_token}\n"
        )
        sys.stdout.flush()

    from trunkline.app import create_app  # here, not at the top: every other command would load it

    config = uvicorn.Config(
        create_app(settings), host=host, port=port, workers=1, **_uvicorn_options(settings)
    )
    server = _ReadyServer(config, on_ready=ready)
    server.run()
    if not server.started:
        raise _fail(f"the server did not start on {host}:{port} (see the log above)")


class _ReadyServer(uvicorn.Server):
    """uvicorn's server, calling `on_ready(port)` once it listens (the port it bound, for port 0)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self._on_ready(int(self.servers[0].sockets[0].getsockname()[1]))
