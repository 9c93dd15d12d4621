"""The base of every Telnyx model, shared field types, and how validation failures become Telnyx errors."""

from __future__ import annotations

import copy
import ipaddress
import re
import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from trunkline.errors import InvalidParameter, TelnyxError, TelnyxErrors, pointer_from_loc

M = TypeVar("M", bound=BaseModel)


class TelnyxModel(BaseModel):
    """Request models: unknown keys are ignored (as Telnyx does); types are not coerced."""

    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class RecordModel(BaseModel):
    """Response models: documented in our OpenAPI, never used to validate what we send."""

    model_config = ConfigDict(extra="allow")


def _check_hostname(value: str) -> str:
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        raise ValueError("must be a hostname of 1 to 253 characters")
    label = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
    if not all(label.match(part) for part in name.split(".")):
        raise ValueError("must be a valid hostname (letters, digits and hyphens between dots)")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return value
    raise ValueError("must be a hostname, not an IP address")


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


class RuleError(ValueError):
    """A rule a model validator checks across fields, naming the field the error is about.

    Pydantic places a model validator's error at the model itself; `loc` (relative to the model) lets
    the error's pointer name the field the caller has to change instead.
    """

    def __init__(self, message: str, *, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def no_nul(value: str) -> str:
    """Text a column holds: PostgreSQL cannot store NUL, so neither engine is given one."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def _check_url(value: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s\x00-\x1f/?#]+[^\s\x00-\x1f]*$", value):
        raise ValueError("must be an absolute URL with a scheme, such as https://example.com/webhooks")
    if len(value) > 2000:
        raise ValueError("must be at most 2000 characters")
    return value


Hostname = Annotated[str, AfterValidator(_check_hostname)]
IpAddress = Annotated[str, AfterValidator(_check_ip)]
Url = Annotated[str, AfterValidator(_check_url)]
# An absolute URL or "" (Telnyx's default for failover URLs). One validator rather than a union with
# Literal[""], whose per-branch errors would name union branches instead of the field.
UrlOrEmpty = Annotated[str, AfterValidator(lambda v: v if v == "" else _check_url(v))]
Port = Annotated[int, Field(ge=1, le=65535)]
Tags = Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=100)]


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "body"
    if error["type"] == "missing":
        return f"The '{field}' parameter is required."
    if error.get("input", ...) is None and error["type"].endswith("_type"):
        return f"The '{field}' parameter may not be null."
    msg = error["msg"].removeprefix("Value error, ")
    return f"Invalid '{field}': {msg}."


# Pydantic names the branch of a union a failure happened in ("function-after[...]", "literal['']",
# "str", a model's class name) inside `loc`; these are schema details, never fields of the body.
_BRANCH_TAGS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "bytes", "decimal"})


def _is_branch_tag(part: str | int) -> bool:
    return isinstance(part, str) and (
        part in _BRANCH_TAGS or part[:1].isupper() or any(c in part for c in "[(-")
    )


def validation_errors(exc: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> TelnyxErrors:
    """Every pydantic failure as a 422 entry whose pointer names the field, one entry per field."""
    errors: list[TelnyxError] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_branch_tag(p))
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, RuleError):
            loc += cause.loc
        loc = prefix + loc
        pointer = pointer_from_loc(loc)
        if pointer in seen:
            continue  # a value that failed every branch of a union: its first reason is enough
        seen.add(pointer)
        errors.append(InvalidParameter(_describe({**err, "loc": loc}), pointer=pointer))
    return TelnyxErrors(errors)


def validate(model: type[M], data: Any, *, prefix: tuple[str | int, ...] = ()) -> M:
    """Validate a request body (or a part of one at `prefix`), raising all its errors at once as
    Telnyx errors whose pointers name the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_errors(exc, prefix=prefix) from None


def raise_all(errors: list[TelnyxError]) -> None:
    """Raise the rule violations a request collected, all together, if there are any."""
    if errors:
        raise TelnyxErrors(errors)


def deep_merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics (trunkline's choice, Telnyx is silent): absent keys keep their value, objects
    merge."""
    out = dict(stored)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_partials: dict[type[BaseModel], type[TelnyxModel]] = {}


def partial_model(model: type[BaseModel]) -> type[TelnyxModel]:
    """The PATCH twin of a create model: every field optional, nested models partial too.

    Defaults are dropped (an absent key must keep the stored value), but types and bounds stay, so an
    explicit null on a field that is not nullable is still refused. Cross-field validators are left
    out: they run on the merged record, where every field has its value.
    """
    if model in _partials:
        return _partials[model]
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        new = copy.copy(info)
        new.default = None
        new.default_factory = None
        new.annotation = _partial_annotation(info.annotation)
        fields[name] = (new.annotation, new)
    partial = create_model(
        f"{model.__name__}Update", __base__=TelnyxModel, __module__=model.__module__, **fields
    )
    partial.__doc__ = f"PATCH body for {model.__name__}: every field optional; nested objects merge."
    _partials[model] = partial
    return partial


def _partial_annotation(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return partial_model(annotation)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = tuple(_partial_annotation(a) for a in get_args(annotation))
        return Union[args]  # noqa: UP007
    if origin is Annotated:
        base, *meta = get_args(annotation)
        return Annotated[(_partial_annotation(base), *meta)]
    return annotation
