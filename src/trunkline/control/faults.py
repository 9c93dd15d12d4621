"""Fault rules: make an account's /v2 requests fail, or slow down, the way Telnyx's can.

A rule matches on method and path pattern; for the next `times` matches (or every one) and with
`probability`, it delays the request by `latency_ms` and, with a `status`, answers that status in
Telnyx's error envelope (or the rule's `body`; control/fault_response.py) without running the route.
The hook runs in `get_caller` (http/deps.py), after authentication and before the transaction, so a
faulted request changes nothing.

Rules are kept by a `Faults` store: MemoryFaults (control/memory_faults.py) in this process, or
RedisFaults (control/redis_faults.py) shared by every API instance; control/stores.py picks one at
startup. Either way a rule's uses are taken atomically, so `times: 3` fires exactly three times
however many requests race for it, and an account has at most MAX_RULES (docs/testing-control.md).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trunkline.errors import InvalidParameter
from trunkline.http.deps import CallerHook
from trunkline.resources.api_keys import Principal

MAX_RULES = 100
MAX_LATENCY_MS = 60_000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
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

    @classmethod
    def of(
        cls, id: str, user_id: str, spec: FaultSpec, remaining: int | None, created_at: float | None = None
    ) -> Rule:
        return cls(id, user_id, spec, compile_path(spec.path), remaining, created_at or time.time())

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "user_id": self.user_id, **self.spec.model_dump(), "remaining": self.remaining}

    def matches(self, method: str, path: str) -> bool:
        return (self.spec.method == "*" or self.spec.method == method) and bool(self.pattern.match(path))


class InjectedFault(Exception):
    """Raised by the hook; its handler answers the rule's response."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        super().__init__(rule.id)


def fires(rule: Rule, rng: random.Random) -> bool:
    """The rule's dice: whether a matching request fires it, before its uses are counted."""
    return rule.spec.probability >= 1.0 or rng.random() < rule.spec.probability


def too_many() -> InvalidParameter:
    return InvalidParameter(
        f"An account may have at most {MAX_RULES} fault rules; delete some first.", pointer="/"
    )


class Faults(Protocol):
    """Every account's rules, in creation order; the first matching rule that fires applies.
    `take` is on every /v2 request's path and never raises."""

    async def add(self, user_id: str, spec: FaultSpec) -> Rule: ...

    async def list(self, user_id: str | None) -> list[Rule]:
        """The rules of one account, or (None) of all, in creation order."""
        ...

    async def clear(self, user_id: str | None) -> int: ...

    async def remove(self, user_id: str | None, rule_id: str) -> Rule | None: ...

    async def take(self, user_id: str, method: str, path: str) -> Rule | None:
        """The rule this request fires, its use counted, or None."""
        ...


def hook_for(rules: Faults) -> CallerHook:
    """The `CallerHook` (http/deps.py) that applies the rule a request fires, if any."""

    async def hook(request: Request, principal: Principal) -> None:
        rule = await rules.take(principal.user_id, request.method, request.url.path)
        if rule is None:
            return
        request.state.fault_id = rule.id
        if rule.spec.latency_ms:
            await asyncio.sleep(rule.spec.latency_ms / 1000)
        if rule.spec.status is not None:
            raise InjectedFault(rule)

    return hook
