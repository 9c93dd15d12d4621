"""Every failure becomes a Telnyx error envelope; nothing a client sends reaches a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trunkline.errors import (
    InvalidPagination,
    InvalidParameter,
    InvalidSort,
    MethodNotAllowed,
    ResourceNotFound,
    TelnyxError,
    TelnyxErrors,
    UnexpectedError,
)
from trunkline.http import envelope

log = logging.getLogger("trunkline.http")


async def on_telnyx_error(_request: Request, exc: Exception) -> Response:
    if isinstance(exc, TelnyxErrors):
        return envelope.errors(exc.errors, exc.status, exc.headers)
    assert isinstance(exc, TelnyxError)
    return envelope.errors([exc], exc.status, exc.headers)


def _query_error(err: dict) -> TelnyxError:
    loc = [str(p) for p in err["loc"][1:]]
    name = loc[0] if loc else "query"
    msg = err["msg"].removeprefix("Value error, ")
    kind: type[InvalidParameter] = InvalidParameter
    if name.startswith("page["):
        kind = InvalidPagination
    elif name == "sort":
        kind = InvalidSort
    pointer = "/" + name.replace("][", "/").replace("[", "/").rstrip("]")
    return kind(f"Invalid '{name}': {msg}.", pointer=pointer, parameter=name)


async def on_request_validation(_request: Request, exc: Exception) -> Response:
    """Query and path parameters that FastAPI checked (bodies are validated by the resources)."""
    assert isinstance(exc, RequestValidationError)
    errs = [_query_error(e) for e in exc.errors()]
    return envelope.errors(errs, 422)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        err: TelnyxError = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 404:
        err = ResourceNotFound(f"No route matches {request.url.path}.")
    else:
        err = TelnyxError(str(exc.detail))
        err.status = exc.status_code
    return envelope.errors([err], err.status, exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    err = UnexpectedError(
        "An unexpected error occurred. It has been logged; try again or contact the operator."
    )
    return envelope.errors([err], 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(TelnyxError, on_telnyx_error)
    app.add_exception_handler(TelnyxErrors, on_telnyx_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
