"""The control API for test suites (docs/testing-control.md): reset, state, faults, the request
journal and virtual registrations, under /_trunkline/. `install` mounts it when settings.control is
on; off, nothing of it is installed, so it costs /v2 requests nothing."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from trunkline.config import Settings
from trunkline.control import faults, routes
from trunkline.control.journal import Journal, JournalMiddleware
from trunkline.http import envelope

# The one control path whose body (a whole account's records) may exceed TRUNKLINE_MAX_BODY_BYTES.
STATE_PATH = f"{routes.PREFIX}/state"


async def _on_injected_fault(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, faults.InjectedFault)
    return faults.response(request, exc.rule)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the control API on `app` when settings.control is on. Call it before the app's outer
    middleware is added, so the journal sits innermost and sees each request's account."""
    app.state.caller_hook = None
    if not settings.control:
        return
    journal = Journal(limit=settings.journal_limit)
    rules = faults.Faults()
    app.state.control_journal = journal
    app.state.control_faults = rules
    app.state.caller_hook = rules.hook
    app.add_exception_handler(faults.InjectedFault, _on_injected_fault)
    app.include_router(
        routes.router,
        responses={status: {"model": envelope.Errors} for status in (400, 401, 403, 404, 413, 415, 422, 429)},
    )
    app.add_middleware(JournalMiddleware, journal=journal)
