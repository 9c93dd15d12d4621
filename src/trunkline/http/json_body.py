"""Request bodies as JSON: strict RFC 8259 text, I-JSON's unique keys, and no NUL in any string.

- Syntax is orjson's (RFC 8259 exactly: no NaN, no comments, no lone surrogates, integers in 64 bits).
- Object keys must be unique. RFC 8259 §4 leaves duplicates to the parser ("the names within an
  object SHOULD be unique"); I-JSON (RFC 7493 §2.3) forbids them. Two parsers that read one body
  differently (first key wins here, last key there) let a body say one thing to a proxy that checks it
  and another to us, so a duplicate is refused with 400 instead of silently taking the last value.
- No string, key or value, may contain NUL (U+0000): PostgreSQL's text cannot hold it, so a body with
  one would fail at the database (a 500) on one engine and be stored on the other. It is refused with
  422 at the field that carries it, for every resource at once.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from trunkline.errors import BadRequest, InvalidParameter, TelnyxErrors, UnsupportedMediaType


def request_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object a request body carries; an empty body is an empty object (the SDK sends none
    on DELETE). Any media type but JSON (`application/json`, `*/*+json`) is 415."""
    if not raw.strip():
        return {}
    ctype = content_type.split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Content type '{ctype}' is not supported; send application/json.")
    body = parse(raw)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def parse(raw: bytes) -> Any:
    """The JSON value of a body, or a Telnyx error that says what is wrong with it."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    if isinstance(value, dict | list):
        # orjson keeps the last of duplicate keys and cannot report them; the standard library's
        # parser shows every key/value pair of an object to a hook. orjson accepted the text already,
        # so this second reading cannot fail for any other reason.
        json.loads(raw, object_pairs_hook=_unique_keys)
    nul = list(_nul_pointers(value, ""))
    if nul:
        raise TelnyxErrors(
            InvalidParameter("Text may not contain the NUL character (\\u0000).", pointer=pointer or "/")
            for pointer in nul
        )
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BadRequest(
                f"The body has the key '{key}' more than once in one object; each key may appear once"
                " (RFC 7493 §2.3)."
            )
        obj[key] = value
    return obj


def _nul_pointers(value: Any, at: str) -> Any:
    """JSON pointers (RFC 6901) of every string in `value` that holds a NUL, key or value."""
    if isinstance(value, str):
        if "\x00" in value:
            yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            pointer = f"{at}/{_escape(key)}"
            if "\x00" in key:
                yield pointer
            else:
                yield from _nul_pointers(item, pointer)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_pointers(item, f"{at}/{index}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1").replace("\x00", "\\u0000")
