"""The control API for test suites (docs/testing-control.md): reset, state, faults, the request
journal and virtual registrations, under /_trunkline/. `install` mounts it when settings.control is
on; off, nothing of it is installed, so it costs /v2 requests nothing."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from trunkline.config import Settings
from trunkline.control import fault_response, faults, routes, stores
from trunkline.control.journal_middleware import JournalMiddleware
from trunkline.http import envelope

# The one control path whose body (a whole account's records) may exceed TRUNKLINE_MAX_BODY_BYTES.
STATE_PATH = f"{routes.PREFIX}/state"


async def _on_injected_fault(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, faults.InjectedFault)
    return fault_response.response(request, exc.rule)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the control API on `app` when settings.control is on. Call it before the app's outer
    middleware is added, so the journal sits innermost and sees each request's account."""
    app.state.caller_hook = None
    if not settings.control:
        return
    kept = stores.create(settings)  # in memory, or in Redis with TRUNKLINE_REDIS_URL
    app.state.control_stores = kept
    app.state.control_journal = kept.journal
    app.state.control_faults = kept.faults
    app.state.caller_hook = faults.hook_for(kept.faults)
    app.add_exception_handler(faults.InjectedFault, _on_injected_fault)
    app.include_router(
        routes.router,
        responses={status: {"model": envelope.Errors} for status in (400, 401, 403, 404, 413, 415, 422, 429)},
    )
    app.add_middleware(JournalMiddleware, journal=kept.journal)


async def close(app: FastAPI) -> None:
    """At shutdown (the app's lifespan): release what the stores hold (Redis connections)."""
    kept: stores.Stores | None = getattr(app.state, "control_stores", None)
    if kept is not None:
        await kept.close()
