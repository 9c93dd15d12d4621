"""`trunkline serve`: the API server."""

from __future__ import annotations

import functools
import logging
import os
from typing import Annotated

import typer

from trunkline.cli import sip as cli_sip
from trunkline.cli._options import DEFAULT_URL, DatabaseUrl, run_in_transaction
from trunkline.cli._protocol import GuardedHttpToolsProtocol
from trunkline.cli.logs import configure_logging
from trunkline.config import Settings
from trunkline.http import front_door
from trunkline.resources import api_keys
from trunkline.store import migrate


def serve(
    host: Annotated[str, typer.Option(envvar="TRUNKLINE_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TRUNKLINE_PORT")] = 8080,
    database_url: DatabaseUrl = DEFAULT_URL,
    workers: Annotated[int, typer.Option(envvar="TRUNKLINE_WORKERS", min=1)] = 1,
    log_level: Annotated[str, typer.Option(envvar="TRUNKLINE_LOG_LEVEL")] = "info",
    sip: Annotated[bool, typer.Option("--sip", help="Also run the SIP edge (Kamailio).")] = False,
    sip_host: cli_sip.SipHost = "127.0.0.1",
    sip_port: cli_sip.SipPort = 5060,
    sip_dir: cli_sip.SipDir = None,
) -> None:
    """Run the API on HOST:PORT, applying database migrations first."""
    import uvicorn

    configure_logging(log_level)
    # The remaining settings (timeouts, limits) come from TRUNKLINE_* variables, as in the workers.
    settings = Settings(database_url=database_url)
    try:
        front_door.check_settings(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    log = logging.getLogger("trunkline")
    if workers > 1 and not settings.redis_url:
        log.warning(
            "%d workers without TRUNKLINE_REDIS_URL: each worker counts rate limits on its own, so a key"
            " may make up to %d times TRUNKLINE_RATE_LIMIT; set TRUNKLINE_REDIS_URL for one budget",
            workers,
            workers,
        )
    migrate.upgrade(database_url)
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
    if sip:
        cli_sip.start_beside_api(cli_sip.edge_settings(database_url, sip_host, sip_port, sip_dir))
    log.info("serving the Telnyx v2 API on http://%s:%d/v2 (docs at /v2/docs)", host, port)
    uvicorn.run(
        "trunkline.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools with a read timeout and a head size cap (cli/_protocol.py); a partial of a
        # module-level class, so it pickles into worker processes. uvicorn only calls what it is given
        # to make each connection's protocol (uvicorn/config.py, Config.load), so a partial serves
        # where its annotation names a class.
        http=functools.partial(  # type: ignore[arg-type]
            GuardedHttpToolsProtocol,
            read_timeout=settings.request_read_timeout_seconds,
            max_head_bytes=settings.max_header_bytes,
        ),
        log_config=None,
        access_log=False,
        # trunkline reads X-Forwarded-For itself, only from TRUNKLINE_TRUSTED_PROXIES: uvicorn's own
        # handling would believe any client on 127.0.0.1 and rewrite the peer address before we see it.
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
