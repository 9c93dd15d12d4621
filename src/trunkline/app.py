"""create_app(settings): wiring only — routers, handlers, middleware, lifespan."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse

from trunkline import __version__, control, edge
from trunkline.config import Settings
from trunkline.errors import ServiceUnavailable
from trunkline.http import docs_page, envelope, handlers, openapi
from trunkline.http.auth import Authenticator
from trunkline.http.front_door import FrontDoor
from trunkline.http.middleware import BodyLimit, RequestContext, SecurityHeaders
from trunkline.http.routes import (
    access_ip_ranges,
    active_calls,
    connections,
    detail_records,
    fqdns,
    ips,
    outbound_voice_profiles,
    phone_numbers,
)
from trunkline.store import ids, notify
from trunkline.store.db import Database, DatabaseUnavailable
from trunkline.webhooks.worker import Worker as WebhookWorker

API_PREFIX = "/v2"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    ids.configure(settings.node_id)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        app.state.db = db
        app.state.auth = Authenticator(db, ttl=settings.key_cache_seconds)
        # On PostgreSQL one LISTEN session per process wakes the access gate when ranges change anywhere.
        listener = notify.open_listener(db, enabled=settings.change_notifications)
        app.state.front_door = FrontDoor(settings, db, listener)
        if listener is not None:
            await listener.start()
        await app.state.front_door.start()
        # Delivers the webhook outbox (docs/webhooks.md); off: another instance delivers it.
        webhooks = WebhookWorker.from_settings(db, settings).start() if settings.webhook_delivery else None
        # Long-lived startup objects out of the collector's sight: a full collection then walks only
        # what requests allocate (measured: a 90 ms pause every ~20,000 requests without this).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if webhooks is not None:
                await webhooks.stop()
            await app.state.front_door.stop()
            if listener is not None:
                await listener.stop()
            await control.close(app)  # the control API's Redis connections, when it has any
            await db.dispose()

    app = FastAPI(
        title="trunkline",
        version=__version__,
        description="A Telnyx-compatible SIP trunking control plane: the Telnyx v2 SIP connection API.",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Where registration status is read from: what the SIP edge on this host recorded.
    app.state.edge_view = edge.registration_view(settings)
    handlers.install(app)
    for router in [
        *connections.routers,
        ips.router,
        access_ip_ranges.router,
        fqdns.router,
        outbound_voice_profiles.router,
        active_calls.router,
        detail_records.router,
        phone_numbers.router,
    ]:
        app.include_router(
            router,
            prefix=API_PREFIX,
            responses={
                status: {"model": envelope.Errors} for status in (400, 401, 403, 404, 413, 415, 422, 429)
            },
        )

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(openapi.build(app))

    # Swagger UI from this process, not a CDN: the page renders offline (http/docs_page.py).
    docs_page.install(
        app, path=f"{API_PREFIX}/docs", openapi_url=f"{API_PREFIX}/openapi.json", title="trunkline API"
    )

    @app.get("/health", tags=["Operations"], summary="The process is up")
    async def health() -> envelope.JsonBytes:
        return envelope.JsonBytes(b'{"status":"ok"}')

    @app.get("/ready", tags=["Operations"], summary="The database answers")
    async def ready(request: Request) -> envelope.JsonBytes:
        try:
            await request.app.state.db.ping()
        except DatabaseUnavailable as exc:
            err = ServiceUnavailable("The database is not reachable: " + str(exc).splitlines()[0])
            return envelope.errors([err], err.status)
        return envelope.JsonBytes(b'{"status":"ready"}')

    control.install(app, settings)  # /_trunkline/ and the request journal, when settings.control is on
    larger = {control.STATE_PATH: settings.control_max_body_bytes} if settings.control else None
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, exceptions=larger)
    app.add_middleware(SecurityHeaders, docs_path=f"{API_PREFIX}/docs")
    app.add_middleware(RequestContext, log=settings.access_log)
    return app
