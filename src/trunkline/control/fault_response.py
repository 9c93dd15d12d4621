"""A fired fault rule's answer: its status in Telnyx's error envelope (or the rule's own body), its
headers, and for a 429 the headers the real rate limit sends (http/ratelimit.py)."""

from __future__ import annotations

import http

import orjson
from fastapi import Request
from starlette.responses import Response

from trunkline.control.faults import Rule
from trunkline.errors import (
    AuthenticationFailed,
    BadRequest,
    InvalidParameter,
    MethodNotAllowed,
    NotAuthorized,
    PayloadTooLarge,
    ResourceNotFound,
    ServiceUnavailable,
    TelnyxError,
    TooManyRequests,
    UnexpectedError,
    UnsupportedMediaType,
)
from trunkline.http import envelope

# The error Telnyx answers for each status it documents
# (https://developers.telnyx.com/docs/overview/errors); others get a generic entry for the status.
_ERRORS: dict[int, type[TelnyxError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: NotAuthorized,
    404: ResourceNotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidParameter,
    429: TooManyRequests,
    500: UnexpectedError,
    503: ServiceUnavailable,
}


def response(request: Request, rule: Rule) -> Response:
    """The rule's answer: its status, Telnyx's error body for it (or the rule's), its headers; a 429
    also gets Retry-After and the x-ratelimit-* headers, as the real rate limit sends them."""
    spec = rule.spec
    assert spec.status is not None
    given = {name.lower(): value for name, value in spec.headers.items()}
    headers = dict(spec.headers)
    if spec.status == 429:
        retry = given.get("retry-after", "1")
        headers.setdefault("Retry-After", retry)
        if "retry-after-ms" not in given and retry.isdigit():
            headers["retry-after-ms"] = str(int(retry) * 1000)
        window = {k.decode(): v.decode() for k, v in getattr(request.state, "response_headers", ())}
        defaults = {
            "x-ratelimit-limit": window.get("x-ratelimit-limit", "1000"),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": retry if retry.isdigit() else "1",
        }
        headers.update({k: v for k, v in defaults.items() if k not in given})
    headers["x-trunkline-fault"] = rule.id
    # The real budget headers RequestContext appends (http/middleware.py) yield to the rule's own.
    names = {name.lower() for name in headers}
    kept = [(k, v) for k, v in getattr(request.state, "response_headers", ()) if k.decode() not in names]
    request.state.response_headers = kept
    if spec.body is not None:
        return envelope.JsonBytes(orjson.dumps(spec.body), status_code=spec.status, headers=headers)
    return envelope.errors([_error(spec.status)], spec.status, headers)


def _error(status: int) -> TelnyxError:
    kind = _ERRORS.get(status)
    if kind is not None:
        return kind()
    phrase = _PHRASES.get(status, "Server error" if status >= 500 else "Client error")
    err = TelnyxError(f"The request failed with status {status} ({phrase}).")
    err.status, err.title, err.pointer = status, phrase, None
    err.code = "10007" if status >= 500 else "10015"
    return err


_PHRASES = {s.value: s.phrase for s in http.HTTPStatus}
