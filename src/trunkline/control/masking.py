"""Secrets out of journal entries: the values of SECRET_KEYS in JSON bodies (at any depth), form bodies
and query strings become "********" in this process, before an entry is stored anywhere (process
memory or Redis; docs/testing-control.md, "The request journal").

The hot path stays cheap: one regular-expression pass over a body that names a secret key, a few
substring searches over one that does not (most); JSON is parsed only for a key spelled with \\u
escapes or holding an object or array.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MASK = "********"
# Keys whose values are secrets wherever they appear (SIP passwords, API keys, tokens).
SECRET_KEYS = frozenset({"password", "api_key", "key", "token", "ip_authentication_token", "secret"})

_names = b"|".join(re.escape(k.encode()) for k in sorted(SECRET_KEYS))
# `"password": <value>` in JSON: a string, number or boolean becomes the mask; an object or array
# (group `open`) sends the body to be parsed and walked instead.
_JSON_VALUE = re.compile(
    rb'("(?:' + _names + rb')"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|(?P<open>[\[{]))',
)
_FORM = re.compile(rb"(^|&)((?:" + _names + rb")=)[^&]*")
_MASK_FORM = b"\\1\\2" + MASK.encode()
_MASKED = b'"' + MASK.encode() + b'"'


def redact(body: bytes) -> bytes:
    """`body` with the value of every secret key masked, whether it is JSON or a form.

    Most bodies name no secret key at all, which a few substring searches tell (the common case on
    the hot path); a key spelled with \\u escapes, or holding an object, is found by parsing. Keys
    match as JSON compares them, case-sensitively (RFC 8259 §8.3): Telnyx's are lowercase.
    """
    if not body:
        return body
    escaped = b"\\u" in body
    if not escaped and not any(name in body for name in _NEEDLES):
        return body
    if body.lstrip()[:1] not in (b"{", b"["):
        return _FORM.sub(_MASK_FORM, body)
    containers = False

    def mask(match: re.Match[bytes]) -> bytes:
        nonlocal containers
        if match.group("open"):
            containers = True
            return match.group(0)
        return match.group(1) + _MASKED

    masked = _JSON_VALUE.sub(mask, body)
    if containers or escaped:
        try:
            return orjson.dumps(_walk(orjson.loads(body)))
        except orjson.JSONDecodeError:
            pass  # not JSON after all: the substitution above is the best that can be done
    return masked


# Substrings one of which every secret key contains ("api_key" holds "key"), searched for first.
_NEEDLES = tuple(k.encode() for k in SECRET_KEYS if not any(o != k and o in k for o in SECRET_KEYS))


def redact_query(query: bytes) -> bytes:
    return _FORM.sub(_MASK_FORM, query) if query else query


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k.lower() in SECRET_KEYS and v is not None else _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value
