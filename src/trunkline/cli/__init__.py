"""The `trunkline` command."""

from __future__ import annotations

import typer

from trunkline.cli import access_ranges, accounts, calls, db, keys, numbers, rates, serve, sip, webhooks

app = typer.Typer(
    name="trunkline",
    help="A Telnyx-compatible SIP trunking control plane.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("sip")(sip.sip)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(access_ranges.app, name="access-ranges")
app.add_typer(accounts.app, name="accounts")
app.add_typer(calls.app, name="calls")
app.add_typer(rates.app, name="rates")
app.add_typer(numbers.app, name="numbers")
app.add_typer(webhooks.app, name="webhooks")


def main() -> None:
    app()
