"""Fault rules: make an account's /v2 requests fail, or slow down, the way Telnyx's can.

A rule matches on method and path pattern; for the next `times` matches (or every one) and with
`probability`, it delays the request by `latency_ms` and, with a `status`, answers that status in
Telnyx's error envelope (or the rule's `body`) without running the route. The hook runs in
`get_caller` (http/deps.py), after authentication and before the transaction, so a faulted request
changes nothing. Choosing and counting a rule happens without an await, so with `times: 3` exactly
three requests fire it however many arrive at once. Rules live in this process's memory, at most
MAX_RULES per account (docs/testing-control.md).
"""

from __future__ import annotations

import asyncio
import http
import itertools
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.responses import Response

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
from trunkline.resources.api_keys import Principal

MAX_RULES = 100
MAX_LATENCY_MS = 60_000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
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
# Headers a rule may not set: they frame the response, which the server alone must do (RFC 9112 §6).
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "content-type"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # a header name (RFC 9110 §5.1)
_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=:@%*-]+$")  # a path segment (RFC 3986 §3.3), or `*`


def compile_path(pattern: str) -> re.Pattern[str]:
    """A path pattern as a regular expression: `*` matches within one segment, a `**` segment any
    number of segments. Raises ValueError naming what is wrong."""
    if not pattern.startswith("/v2/") and pattern != "/v2":
        raise ValueError("must start with /v2/ (faults apply to the Telnyx API only)")
    if len(pattern) > 512:
        raise ValueError("must be at most 512 characters")
    parts: list[str] = []
    for segment in pattern[1:].split("/"):
        if segment == "**":
            parts.append("(?:/[^/]+)*")
            continue
        if not segment or not _SEGMENT.match(segment) or "**" in segment:
            raise ValueError(f"has an invalid segment '{segment}' (use * within a segment, ** alone)")
        parts.append("/" + "[^/]*".join(re.escape(p) for p in segment.split("*")))
    return re.compile("".join(parts) + "$")


class FaultSpec(BaseModel):
    """The body of `POST /_trunkline/faults`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: str = Field("*", description="An HTTP method, or * for any.")
    path: str = Field(description="/v2/... ; * matches within a segment, ** any segments.")
    status: int | None = Field(None, ge=400, le=599, description="Answer this status (400-599).")
    headers: dict[str, str] = Field(default_factory=dict, max_length=32)
    body: dict[str, Any] | list[Any] | None = None
    latency_ms: int = Field(0, ge=0, le=MAX_LATENCY_MS)
    times: int | None = Field(None, ge=1, le=1_000_000, description="Fire for this many matches only.")
    probability: float = Field(1.0, gt=0.0, le=1.0)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value != "*" and value.upper() not in METHODS:
            raise ValueError(f"must be * or one of {', '.join(METHODS)}")
        return value.upper()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        compile_path(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"'{name}' is not a header name")
            if name.lower() in _FRAMING:
                raise ValueError(f"'{name}' is set by the server and may not be given")
            if len(text) > 1024 or any(c in text for c in "\r\n\x00") or not text.isascii():
                raise ValueError(f"the value of '{name}' must be ASCII without line breaks (1024 at most)")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: Any) -> Any:
        if value is not None and len(orjson.dumps(value)) > 65_536:
            raise ValueError("must be at most 64 KiB as JSON")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> FaultSpec:
        if self.status is None and not self.latency_ms:
            raise ValueError("a rule needs a status, a latency_ms, or both")
        if self.status is None and (self.body is not None or self.headers):
            raise ValueError("body and headers need a status")
        return self


@dataclass
class Rule:
    id: str
    user_id: str
    spec: FaultSpec
    pattern: re.Pattern[str]
    remaining: int | None
    created_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "user_id": self.user_id, **self.spec.model_dump(), "remaining": self.remaining}

    def matches(self, method: str, path: str) -> bool:
        return (self.spec.method == "*" or self.spec.method == method) and bool(self.pattern.match(path))


class InjectedFault(Exception):
    """Raised by the hook; its handler answers the rule's response."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        super().__init__(rule.id)


class Faults:
    """Every account's rules, in creation order; the first matching rule that fires applies."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rules: dict[str, list[Rule]] = {}
        self._ids = itertools.count(1)
        self._random = rng or random.Random()

    def add(self, user_id: str, spec: FaultSpec) -> Rule:
        rules = self._rules.setdefault(user_id, [])
        if len(rules) >= MAX_RULES:
            raise InvalidParameter(
                f"An account may have at most {MAX_RULES} fault rules; delete some first.", pointer="/"
            )
        rule = Rule(
            id=f"fault_{next(self._ids)}",
            user_id=user_id,
            spec=spec,
            pattern=compile_path(spec.path),
            remaining=spec.times,
        )
        rules.append(rule)
        return rule

    def list(self, user_id: str | None) -> list[Rule]:
        if user_id is None:
            return sorted((r for rules in self._rules.values() for r in rules), key=lambda r: r.created_at)
        return list(self._rules.get(user_id, ()))

    def clear(self, user_id: str | None) -> int:
        if user_id is None:
            count = sum(len(r) for r in self._rules.values())
            self._rules.clear()
            return count
        return len(self._rules.pop(user_id, ()))

    def remove(self, user_id: str | None, rule_id: str) -> Rule | None:
        for owner, rules in self._rules.items():
            if user_id is not None and owner != user_id:
                continue
            for rule in rules:
                if rule.id == rule_id:
                    rules.remove(rule)
                    return rule
        return None

    def take(self, user_id: str, method: str, path: str) -> Rule | None:
        """The rule that fires for this request, counted; synchronous, so concurrent requests never
        both take a rule's last use."""
        rules = self._rules.get(user_id)
        if not rules:
            return None
        for rule in rules:
            if not rule.matches(method, path):
                continue
            if rule.spec.probability < 1.0 and self._random.random() >= rule.spec.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
            return rule
        return None

    async def hook(self, request: Request, principal: Principal) -> None:
        """`CallerHook` (http/deps.py): apply the rule this request fires, if any."""
        if not self._rules:
            return
        rule = self.take(principal.user_id, request.method, request.url.path)
        if rule is None:
            return
        request.state.fault_id = rule.id
        if rule.spec.latency_ms:
            await asyncio.sleep(rule.spec.latency_ms / 1000)
        if rule.spec.status is not None:
            raise InjectedFault(rule)


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
