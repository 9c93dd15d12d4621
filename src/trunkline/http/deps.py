"""Dependencies every route uses: the transaction, the caller, the JSON body, the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Query, Request

from trunkline.config import Settings
from trunkline.errors import AuthenticationFailed, NotAuthorized
from trunkline.http import json_body
from trunkline.http.front_door import FrontDoor
from trunkline.resources.api_keys import Principal
from trunkline.store.db import Conn, Database
from trunkline.store.paging import Page

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where the request's admitted principal is kept (see get_caller).
_PRINCIPAL = "trunkline.principal"
# FastAPI's per-request exit stack for the route function's dependencies (see get_conn).
_FUNCTION_STACK = "fastapi_function_astack"


class CallerHook(Protocol):
    """Called with every authenticated, admitted /v2 request before its route runs."""

    async def __call__(self, request: Request, principal: Principal) -> None: ...


async def marks_read(request: Request) -> None:
    """Route dependency for a POST action that only reads (check_registration_status): read-only keys
    may call it and it runs in a read transaction. Route dependencies resolve before the caller's."""
    request.state.reads_only = True


def writes(request: Request) -> bool:
    return request.method not in SAFE_METHODS and not getattr(request.state, "reads_only", False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def bearer(request: Request) -> tuple[str | None, str]:
    """The client address and the credential of `Authorization: Bearer <credential>`, once the
    address has passed the lockout for failed attempts (http/front_door.py)."""
    door: FrontDoor = request.app.state.front_door
    address = door.client_address(request.scope)
    door.check_lockout(address)
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationFailed()
    return address, credential


async def admit_key(request: Request, address: str | None, key: str, *, writing: bool) -> Principal:
    """The principal of an API key the front door admits: a live key, from inside the account's
    access ranges, within its rate limit, and with write access when `writing`. A request it
    refuses does nothing."""
    door: FrontDoor = request.app.state.front_door
    principal: Principal | None = await request.app.state.auth.authenticate(key)
    if principal is None:
        raise await door.refuse_key(address)
    request.state.key_id = principal.key_id
    # Whose request journal it goes to (control/journal.py), refused by the front door or not.
    request.state.user_id = principal.user_id
    await door.admit(request, principal, address)
    if principal.read_only and writing:
        raise NotAuthorized("This API key is read-only; use a key with write access to change resources.")
    return principal


async def get_caller(request: Request) -> Principal:
    """The account a /v2 request acts for; read-only keys may only read.

    Admitted once per request: `get_conn` asks for the caller too (the transaction begins only once
    the caller is admitted), and admitting twice would spend the key's budget twice."""
    scope = request.scope
    principal: Principal | None = scope.get(_PRINCIPAL)
    if principal is not None:
        return principal
    address, key = bearer(request)
    principal = await admit_key(request, address, key, writing=writes(request))
    # The control API's fault rules (control/faults.py), when it is on: may delay the request, or
    # answer it with an error before any transaction begins, so a faulted request changes nothing.
    hook: CallerHook | None = getattr(request.app.state, "caller_hook", None)
    if hook is not None:
        await hook(request, principal)
    scope[_PRINCIPAL] = principal
    return principal


async def get_conn(request: Request) -> Conn:
    """One transaction per request, begun once the caller is admitted and the body has arrived,
    committed before the response (rolled back when the route raises).

    A client may send its head and then its body one byte at a time; whatever it holds while it does
    so it holds from every other request (the SQLite write lock, a PostgreSQL pool slot). So the body
    is read into memory first (Starlette keeps it for `get_body`); a request without one has none to
    wait for (RFC 9112 §6.3: no Content-Length or Transfer-Encoding, no body).

    Not a `yield` dependency under `get_caller`: FastAPI wraps each yield dependency in a context
    manager, a cancel scope and a shielded exit per request, and solves a sub-dependency again before
    it looks in its cache (together 90 µs of a 340 µs GET by id, measured in process). The
    transaction's exit goes on the stack FastAPI unwinds right after the route returns, where a
    `scope="function"` dependency's exit runs (fastapi/routing.py, `request_response`), so the commit
    still comes before the response. Unshielded: a request task cancelled during its commit (uvicorn
    does so only at a forced shutdown) gets no response, and its transaction is atomic either way.
    """
    await get_caller(request)
    if "content-length" in request.headers or "transfer-encoding" in request.headers:
        await request.body()
    stack = request.scope.get(_FUNCTION_STACK)
    if stack is None:
        raise RuntimeError(f"FastAPI no longer provides {_FUNCTION_STACK!r}; see get_conn")
    db: Database = request.app.state.db
    transaction = db.transaction(write=writes(request))
    conn = await transaction.__aenter__()
    stack.push_async_exit(transaction.__aexit__)
    return conn


async def get_body(request: Request, _caller: Annotated[Principal, Depends(get_caller)]) -> dict[str, Any]:
    """The JSON object a request carries (http/json_body.py)."""
    return json_body.request_object(await request.body(), request.headers.get("content-type", ""))


# The largest page number: its offset, (number - 1) * 250, must fit the databases' 64-bit OFFSET.
# Beyond any real data either way; larger numbers are refused like other bad pagination (422).
MAX_PAGE_NUMBER = 2**31 - 1


def page_of(default_size: int) -> Callable[..., Awaitable[Page]]:
    """A `page[number]` / `page[size]` dependency with this list's default size (Telnyx's spec: 250 for
    connections, IPs and FQDNs, 20 for outbound voice profiles and access IP ranges)."""

    async def dependency(
        number: Annotated[
            int,
            Query(alias="page[number]", ge=1, le=MAX_PAGE_NUMBER, description="Page number, from 1."),
        ] = 1,
        size: Annotated[
            int, Query(alias="page[size]", ge=1, le=250, description="Results per page (1-250).")
        ] = default_size,
    ) -> Page:
        return Page(number=number, size=size)

    return dependency


Caller = Annotated[Principal, Depends(get_caller)]
Db = Annotated[Conn, Depends(get_conn)]
Body = Annotated[dict[str, Any], Depends(get_body)]
AppSettings = Annotated[Settings, Depends(get_settings)]
