"""`trunkline sip`: run the SIP edge (Kamailio, supervised) for a trunkline database."""

from __future__ import annotations

import asyncio
import atexit
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from trunkline import edge
from trunkline.cli._options import DEFAULT_URL, DatabaseUrl
from trunkline.cli.logs import configure_logging
from trunkline.config import Settings
from trunkline.sip import upstreams
from trunkline.sip.owner import DirectoryLockError
from trunkline.sip.service import EdgeService, EdgeStartFailed
from trunkline.sip.supervisor import KamailioConfigInvalid, KamailioMissing
from trunkline.store import migrate

SipHost = Annotated[
    str, typer.Option("--sip-host", envvar="TRUNKLINE_SIP_HOST", help="Address the SIP edge listens on.")
]
SipPort = Annotated[
    int, typer.Option("--sip-port", envvar="TRUNKLINE_SIP_PORT", help="SIP port (UDP and TCP).")
]
SipDir = Annotated[
    Path | None,
    typer.Option(
        "--sip-dir",
        envvar="TRUNKLINE_SIP_DIR",
        help="The SIP edge's runtime directory (default ./var/sip); one supervisor per directory.",
        show_default=False,
    ),
]
SipUpstream = Annotated[
    list[str] | None,
    typer.Option(
        "--sip-upstream",
        help="An upstream gateway, host:port[;transport=tcp]; repeat it for several, tried in order"
        " (default: TRUNKLINE_SIP_UPSTREAMS, comma-separated).",
        show_default=False,
    ),
]
STARTUP_ERRORS = (KamailioMissing, KamailioConfigInvalid, EdgeStartFailed, DirectoryLockError)


def edge_settings(
    database_url: str,
    sip_host: str,
    sip_port: int,
    sip_dir: Path | None,
    sip_upstream: list[str] | None = None,
) -> Settings:
    """The edge's settings: these options, the rest from TRUNKLINE_* variables. Exits with status 2
    and a message naming the entry when an upstream gateway is malformed."""
    settings = Settings(database_url=database_url, sip_host=sip_host, sip_port=sip_port)
    if sip_dir is not None:
        settings = settings.model_copy(update={"sip_dir": sip_dir})
    if sip_upstream:
        for entry in sip_upstream:
            try:
                upstreams.parse_entry(entry, setting="--sip-upstream")
            except upstreams.UpstreamError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
        settings = settings.model_copy(update={"sip_upstreams": ",".join(sip_upstream)})
    try:
        edge.upstreams(settings)
    except upstreams.UpstreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def sip(
    sip_host: SipHost = "127.0.0.1",
    sip_port: SipPort = 5060,
    database_url: DatabaseUrl = DEFAULT_URL,
    log_level: Annotated[str, typer.Option(envvar="TRUNKLINE_LOG_LEVEL")] = "info",
    sip_dir: SipDir = None,
    sip_upstream: SipUpstream = None,
) -> None:
    """Run Kamailio on SIP_HOST:SIP_PORT (UDP and TCP), enforcing what the API configures, until stopped."""
    configure_logging(log_level)
    settings = edge_settings(database_url, sip_host, sip_port, sip_dir, sip_upstream)
    migrate.upgrade(database_url)
    service = edge.service(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    try:
        asyncio.run(main())
    except STARTUP_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    logging.getLogger("trunkline.sip").info("SIP edge stopped")


def start_beside_api(settings: Settings) -> EdgeService:
    """For `serve --sip`: the edge on a thread of its own, stopped when the process exits."""
    try:
        service = edge.service(settings).start_in_thread()
    except STARTUP_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    atexit.register(service.stop_thread)

    # uvicorn restores the handlers it found and re-raises SIGINT/SIGTERM once it has shut down; with
    # the default handlers the process would die there, before atexit, and leave Kamailio running.
    def stop(signum: int, _frame: object) -> None:
        service.stop_thread()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    return service
