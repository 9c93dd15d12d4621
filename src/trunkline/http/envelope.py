"""Telnyx response bodies, serialized once with orjson: `{"data"}`, `{"data","meta"}`, `{"errors"}`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from trunkline.errors import TelnyxError
from trunkline.store.paging import PageResult

T = TypeVar("T")


class JsonBytes(Response):
    media_type = "application/json"


def data(record: Mapping[str, Any], status: int = 200) -> JsonBytes:
    return JsonBytes(orjson.dumps({"data": record}), status_code=status)


def data_raw(document: str, status: int = 200) -> JsonBytes:
    """`{"data": <stored JSON>}` without parsing the stored text: the hot path."""
    return JsonBytes(b'{"data":' + document.encode() + b"}", status_code=status)


def bare(record: Mapping[str, Any], status: int = 200) -> JsonBytes:
    """An object with no envelope: what access IP range create and delete answer
    (https://developers.telnyx.com/api-reference/ip-ranges/create-new-access-ip-range)."""
    return JsonBytes(orjson.dumps(record), status_code=status)


def meta(result: PageResult) -> dict[str, int]:
    return {
        "page_number": result.page.number,
        "page_size": result.page.size,
        "total_pages": result.total_pages,
        "total_results": result.total,
    }


def page(records: Iterable[Mapping[str, Any]], result: PageResult) -> JsonBytes:
    return JsonBytes(orjson.dumps({"data": list(records), "meta": meta(result)}))


def page_raw(documents: Sequence[str], result: PageResult) -> JsonBytes:
    body = b'{"data":[' + ",".join(documents).encode() + b'],"meta":' + orjson.dumps(meta(result)) + b"}"
    return JsonBytes(body)


def errors(errs: Sequence[TelnyxError], status: int, headers: Mapping[str, str] | None = None) -> JsonBytes:
    return JsonBytes(
        orjson.dumps({"errors": [e.to_entry() for e in errs]}),
        status_code=status,
        headers=dict(headers or {}),
    )


# Shapes for the OpenAPI document only; responses are built above, never validated through these.
class Data(BaseModel, Generic[T]):
    data: T


class Meta(BaseModel):
    page_number: int
    page_size: int
    total_pages: int
    total_results: int


class DataPage(BaseModel, Generic[T]):
    data: list[T]
    meta: Meta


class ErrorSource(BaseModel):
    pointer: str | None = None
    parameter: str | None = None


class ErrorEntry(BaseModel):
    code: str
    title: str
    detail: str | None = None
    source: ErrorSource | None = None
    meta: dict[str, Any] | None = None


class Errors(BaseModel):
    errors: list[ErrorEntry]
