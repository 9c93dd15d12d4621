"""Telnyx API errors: the exceptions every layer raises and the envelope entries they become.

The tree (status, code):

    TelnyxError
    ├── BadRequest              400  10015  malformed JSON, non-object body
    ├── AuthenticationFailed    401  10009
    ├── NotAuthorized           403  10010  read-only key writing, address outside the access ranges
    ├── ResourceNotFound        404  10005  unknown id (or another account's), unknown route
    ├── MethodNotAllowed        405  10015
    ├── PayloadTooLarge         413  10015
    ├── UnsupportedMediaType    415  10015
    ├── InvalidParameter        422  10015  a field that breaks a rule
    │   ├── InvalidPagination   422  10015  page[number] / page[size]
    │   ├── InvalidSort         422  10015
    │   ├── DuplicateResource   422  10012  never 409: the SDK retries 409 silently
    │   ├── MissingAssociation  422  10017  a referenced id that does not exist in the account
    │   └── ResourceInUse       422  10015  deleting what others still reference
    ├── TooManyRequests         429  10011
    ├── UnexpectedError         500  10007
    └── ServiceUnavailable      503  10007  the database does not answer (/ready)

`TelnyxErrors` carries several entries at once, so one request reports all its mistakes.
Codes and titles follow developers.telnyx.com > API errors and the examples in Telnyx's OpenAPI spec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DOCS_URL = "https://developers.telnyx.com/docs/overview/errors/{code}"


class TelnyxError(Exception):
    """One Telnyx error entry, raised from any layer and rendered once by the HTTP layer."""

    status: int = 500
    code: str = "10007"
    title: str = "Unexpected error"
    default_detail: str = "An unexpected error occurred."
    default_pointer: str | None = "/"

    def __init__(
        self,
        detail: str | None = None,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.pointer = pointer if pointer is not None else self.default_pointer
        self.parameter = parameter
        self.headers = headers or {}
        super().__init__(self.detail)

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "title": self.title, "detail": self.detail}
        source: dict[str, str] = {}
        if self.pointer is not None:
            source["pointer"] = self.pointer
        if self.parameter is not None:
            source["parameter"] = self.parameter
        if source:
            entry["source"] = source
        entry["meta"] = {"url": DOCS_URL.format(code=self.code)}
        return entry


class TelnyxErrors(Exception):
    """Several errors of one request, reported together; the status is the first one's."""

    def __init__(self, errors: Iterable[TelnyxError]) -> None:
        self.errors = list(errors)
        if not self.errors:
            raise ValueError("TelnyxErrors needs at least one error")
        self.status = self.errors[0].status
        super().__init__("; ".join(e.detail for e in self.errors))

    @property
    def headers(self) -> dict[str, str]:
        return self.errors[0].headers


def entries_of(exc: TelnyxError | TelnyxErrors) -> list[TelnyxError]:
    """The error entries one raised error stands for: itself, or the several it carries."""
    return exc.errors if isinstance(exc, TelnyxErrors) else [exc]


class BadRequest(TelnyxError):
    """400: the request is not well-formed (Telnyx code 10015)."""

    status, code, title = 400, "10015", "Bad Request"
    default_detail = "The request could not be understood."


class AuthenticationFailed(TelnyxError):
    """401: no API key, or one that is unknown or revoked (Telnyx code 10009)."""

    status, code, title = 401, "10009", "Authentication failed"
    default_detail = "The API key is missing, unknown or revoked. Send 'Authorization: Bearer <API key>'."
    default_pointer = None


class NotAuthorized(TelnyxError):
    """403: the key is valid but may not do this (Telnyx code 10010)."""

    status, code, title = 403, "10010", "Not authorized"
    default_detail = "You are not authorized to perform this request."


class ResourceNotFound(TelnyxError):
    """404: the resource or route does not exist for this account (Telnyx code 10005)."""

    status, code, title = 404, "10005", "Resource not found"
    default_detail = "The requested resource or URL could not be found."


class MethodNotAllowed(TelnyxError):
    """405: the route exists but not with this method."""

    status, code, title = 405, "10015", "Method not allowed"
    default_detail = "This method is not allowed on this URL."


class PayloadTooLarge(TelnyxError):
    """413: the body is larger than the server accepts."""

    status, code, title = 413, "10015", "Payload too large"
    default_detail = "The request body is too large."


class UnsupportedMediaType(TelnyxError):
    """415: a body was sent with a content type other than JSON."""

    status, code, title = 415, "10015", "Unsupported media type"
    default_detail = "Send the request body as JSON with 'Content-Type: application/json'."


class InvalidParameter(TelnyxError):
    """422: a field or parameter breaks a rule (Telnyx code 10015, title as in Telnyx's 422 example)."""

    status, code, title = 422, "10015", "Bad Request"
    default_detail = "A parameter is invalid."


class InvalidPagination(InvalidParameter):
    """422: page[number] or page[size] is out of range or not a number."""

    title = "Invalid pagination"
    default_detail = "page[number] must be an integer of at least 1 and page[size] one from 1 to 250."


class InvalidSort(InvalidParameter):
    """422: the sort value is not one this list supports."""

    title = "Invalid sorting value"
    default_detail = "The sort value is not supported."


class DuplicateResource(InvalidParameter):
    """422: a value that must be unique is already taken (Telnyx code 10012)."""

    code, title = "10012", "Duplicate resource"
    default_detail = "This value is already in use."


class MissingAssociation(InvalidParameter):
    """422: a referenced resource does not exist in this account (Telnyx code 10017)."""

    code, title = "10017", "Associated resource does not exist"
    default_detail = "The referenced resource does not exist."


class ResourceInUse(InvalidParameter):
    """422: the resource cannot be deleted while others still reference it."""

    title = "Resource in use"
    default_detail = "The resource is still referenced by other resources."


class TooManyRequests(TelnyxError):
    """429: the request allowance is used up (Telnyx code 10011)."""

    status, code, title = 429, "10011", "Too many requests"
    default_detail = "You have exceeded the request allowance. Wait and try again."
    default_pointer = None


class UnexpectedError(TelnyxError):
    """500: something failed on our side; the details are in the server log, never in the body."""

    status, code, title = 500, "10007", "Unexpected error"
    default_pointer = None


def pointer_from_loc(loc: Iterable[str | int]) -> str:
    """An RFC 6901 JSON pointer from a pydantic error location."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else "/"


class ServiceUnavailable(TelnyxError):
    """503: a service trunkline needs (the database) does not answer; try again shortly."""

    status, code, title = 503, "10007", "Service unavailable"
    default_pointer = None
