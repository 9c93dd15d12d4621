"""The model machinery without a server: partial models, deep merge, validators, errors and pointers."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import trunkline.errors as errors_module
from trunkline.errors import (
    AuthenticationFailed,
    InvalidParameter,
    TelnyxError,
    TelnyxErrors,
    pointer_from_loc,
)
from trunkline.resources._base import (
    RuleError,
    TelnyxModel,
    UrlOrEmpty,
    deep_merge,
    partial_model,
    validate,
    validation_errors,
)
from trunkline.resources.connections import models
from trunkline.resources.connections.kinds import KINDS
from trunkline.store import ids


def pointers_of(model: type[BaseModel], body: Any) -> list[str]:
    with pytest.raises(TelnyxErrors) as err:
        validate(model, body)
    return [e.pointer for e in err.value.errors]  # type: ignore[misc]


# partial_model


def test_partial_model_makes_every_field_optional_with_no_default() -> None:
    update = partial_model(models.CredentialConnectionCreate)
    parsed = update.model_validate({})
    assert parsed.model_dump(exclude_unset=True) == {}
    assert all(not info.is_required() for info in update.model_fields.values())
    assert all(info.default is None for info in update.model_fields.values())


def test_partial_model_nested_models_are_partial_too() -> None:
    update = partial_model(models.CredentialConnectionCreate)
    parsed = update.model_validate({"inbound": {"timeout_1xx_secs": 5}, "jitter_buffer": {}})
    assert parsed.model_dump(exclude_unset=True) == {"inbound": {"timeout_1xx_secs": 5}, "jitter_buffer": {}}


def test_partial_model_keeps_types_and_bounds() -> None:
    update = partial_model(models.CredentialConnectionCreate)
    assert pointers_of(update, {"inbound": {"timeout_1xx_secs": 121}}) == ["/inbound/timeout_1xx_secs"]
    assert pointers_of(update, {"dtmf_type": "beep"}) == ["/dtmf_type"]
    assert pointers_of(update, {"user_name": "no"}) == ["/user_name"]
    assert pointers_of(update, {"password": "short"}) == ["/password"]


def test_partial_model_explicit_null_only_where_nullable() -> None:
    update = partial_model(models.IpConnectionSettings)
    ok = validate(
        update, {"connection_name": None, "webhook_timeout_secs": None, "inbound": {"channel_limit": None}}
    )
    assert ok.model_dump(exclude_unset=True) == {
        "connection_name": None,
        "webhook_timeout_secs": None,
        "inbound": {"channel_limit": None},
    }
    assert pointers_of(update, {"active": None, "inbound": {"sip_region": None}}) == [
        "/active",
        "/inbound/sip_region",
    ]


def test_partial_model_leaves_cross_field_rules_to_the_merged_record() -> None:
    update = partial_model(models.CredentialConnectionCreate)
    # Alone, a PATCH may name one end of a range or TeXML: the merged record is checked afterwards.
    validate(update, {"jitter_buffer": {"jitterbuffer_msec_min": 300}, "webhook_api_version": "texml"})
    assert pointers_of(models.JitterBuffer, {"jitterbuffer_msec_min": 300, "jitterbuffer_msec_max": 100}) == [
        "/jitterbuffer_msec_min"
    ]


def test_partial_model_is_built_once_per_model() -> None:
    assert partial_model(models.FqdnConnectionSettings) is partial_model(models.FqdnConnectionSettings)
    assert partial_model(models.FqdnConnectionSettings).__name__ == "FqdnConnectionSettingsUpdate"
    for spec in KINDS.values():
        assert spec.update is partial_model(spec.create)


# deep_merge


def test_deep_merge_absent_keys_keep_their_values() -> None:
    stored = {"a": 1, "inbound": {"x": 1, "y": 2}, "tags": ["t"]}
    assert deep_merge(stored, {"inbound": {"y": 3}}) == {"a": 1, "inbound": {"x": 1, "y": 3}, "tags": ["t"]}


def test_deep_merge_null_and_lists_replace() -> None:
    stored = {"a": 1, "inbound": {"x": 1}, "tags": ["t", "u"]}
    assert deep_merge(stored, {"a": None, "tags": ["v"]}) == {"a": None, "inbound": {"x": 1}, "tags": ["v"]}
    assert deep_merge(stored, {"inbound": None}) == {"a": 1, "inbound": None, "tags": ["t", "u"]}


def test_deep_merge_merges_at_every_depth_and_adds_new_keys() -> None:
    stored = {"o": {"p": {"q": 1, "r": 2}}}
    assert deep_merge(stored, {"o": {"p": {"r": 3, "s": 4}, "t": 5}, "u": 6}) == {
        "o": {"p": {"q": 1, "r": 3, "s": 4}, "t": 5},
        "u": 6,
    }


def test_deep_merge_object_over_scalar_replaces_it() -> None:
    assert deep_merge({"a": None}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert deep_merge({"a": {"b": 1}}, {"a": 2}) == {"a": 2}


def test_deep_merge_does_not_change_its_inputs() -> None:
    stored = {"inbound": {"x": 1}}
    patch = {"inbound": {"y": 2}}
    deep_merge(stored, patch)
    assert stored == {"inbound": {"x": 1}} and patch == {"inbound": {"y": 2}}


# validators


@pytest.mark.parametrize("value", ["abcd", "1234a", "A1b2C3", "a" * 32, "0000Z9"])
def test_user_name_valid_values_pass(value: str) -> None:
    assert models._check_user_name(value) == value


@pytest.mark.parametrize("value", ["abc", "a" * 33, "12345a", "ab cd", "ab_cd", "abcd!", "", "ábcd"])
def test_user_name_invalid_values_fail(value: str) -> None:
    with pytest.raises(ValueError):
        models._check_user_name(value)


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("tech_prefix", "1234", True),
        ("tech_prefix", "", True),
        ("tech_prefix", "123", False),
        ("tech_prefix", "12345", False),
        ("ip_authentication_token", "a" * 12, True),
        ("ip_authentication_token", "a-b-" * 12, True),
        ("ip_authentication_token", "a" * 11, False),
        ("ip_authentication_token", "a" * 49, False),
        ("ip_authentication_token", "abc def ghij", False),
        ("localization", "GB", True),
        ("localization", "", True),
        ("localization", "gb", False),
    ],
)
def test_ip_outbound_field_rules(field: str, value: str, ok: bool) -> None:
    if ok:
        assert getattr(validate(models.IpOutbound, {field: value}), field) == value
    else:
        assert pointers_of(models.IpOutbound, {field: value}) == [f"/{field}"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://example.com", True),
        ("http://example.com:8080/a?b=c", True),
        ("", True),
        ("example.com", False),
        ("https://", False),
        ("https://exa mple.com", False),
        ("https://example.com/" + "a" * 2000, False),
        ("https://example.com/\x00", False),
        ("https://example.com/a\tb", False),
    ],
)
def test_url_or_empty_rules(value: str, ok: bool) -> None:
    class Hook(TelnyxModel):
        url: UrlOrEmpty | None = ""

    if ok:
        assert Hook.model_validate({"url": value}).url == value
    else:
        assert pointers_of(Hook, {"url": value}) == ["/url"]


def test_connection_name_refuses_nul_and_numeric_ids_want_ascii_digits() -> None:
    assert pointers_of(models.IpConnectionSettings, {"connection_name": "a\x00b"}) == ["/connection_name"]
    assert [
        ids.is_numeric_id(v) for v in ("913868250309771264", "", "12\x003", "\uff11\uff12", "-1", "1.0")
    ] == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_noise_suppression_attenuation_defaults_follow_the_engine() -> None:
    limits = {
        engine: validate(models.NoiseSuppressionDetails, {"engine": engine}).attenuation_limit
        for engine in ("denoiser", "deep_filter_net", "krisp_viva_tel", "quail_voice_focus")
    }
    assert limits == {"denoiser": 0, "deep_filter_net": 80, "krisp_viva_tel": 80, "quail_voice_focus": 100}
    explicit = validate(
        models.NoiseSuppressionDetails, {"engine": "quail_voice_focus", "attenuation_limit": 7}
    )
    assert explicit.attenuation_limit == 7


def test_models_do_not_coerce_types() -> None:
    assert pointers_of(
        models.IpConnectionSettings, {"active": "true", "webhook_timeout_secs": "5", "tags": "x"}
    ) == [
        "/active",
        "/tags",
        "/webhook_timeout_secs",
    ]


def test_models_ignore_unknown_keys() -> None:
    parsed = validate(models.IpConnectionSettings, {"whatever": 1, "inbound": {"nope": 2}})
    assert "whatever" not in parsed.model_dump() and "nope" not in parsed.model_dump()["inbound"]


# errors and pointers


@pytest.mark.parametrize(
    ("loc", "pointer"),
    [
        ((), "/"),
        (("inbound", "timeout_1xx_secs"), "/inbound/timeout_1xx_secs"),
        (("tags", 0), "/tags/0"),
        (("a/b", "c~d"), "/a~1b/c~0d"),
    ],
)
def test_pointer_from_loc_is_rfc_6901(loc: tuple[str | int, ...], pointer: str) -> None:
    assert pointer_from_loc(loc) == pointer


def test_validation_errors_report_every_field_with_its_pointer() -> None:
    body = {"user_name": "x", "inbound": {"codecs": ["G722", "nope"], "timeout_2xx_secs": 0}}
    assert pointers_of(models.CredentialConnectionCreate, body) == [
        "/connection_name",
        "/user_name",
        "/inbound/codecs/1",
        "/inbound/timeout_2xx_secs",
        "/password",
    ]


def test_validation_errors_name_the_field_not_the_union_branch() -> None:
    class Either(TelnyxModel):
        value: int | str
        url: UrlOrEmpty | None = ""

    with pytest.raises(ValidationError) as err:
        Either.model_validate({"value": 1.5, "url": "nope"})
    entries = validation_errors(err.value).errors
    assert [e.pointer for e in entries] == ["/value", "/url"]
    assert all("[" not in e.detail for e in entries)


def test_validation_errors_place_rule_errors_at_the_named_field() -> None:
    body = {"connection_name": "c", "user_name": "abcd1", "password": "p" * 8, "webhook_api_version": "texml"}
    with pytest.raises(TelnyxErrors) as err:
        validate(models.CredentialConnectionCreate, body)
    (entry,) = err.value.errors
    assert entry.pointer == "/webhook_api_version"
    assert "call_parking_enabled" in entry.detail


def test_rule_error_is_a_value_error_with_a_location() -> None:
    exc = RuleError("bad", loc=("a", 1))
    assert isinstance(exc, ValueError) and exc.loc == ("a", 1) and str(exc) == "bad"


def test_validation_errors_say_null_is_not_allowed() -> None:
    update = partial_model(models.IpConnectionSettings)
    with pytest.raises(TelnyxErrors) as err:
        validate(update, {"active": None})
    assert err.value.errors[0].detail == "The 'active' parameter may not be null."


def test_validation_errors_prefix_places_nested_bodies() -> None:
    with pytest.raises(ValidationError) as err:
        models.RtcpSettings.model_validate({"port": "x"})
    assert validation_errors(err.value, prefix=("rtcp_settings",)).errors[0].pointer == "/rtcp_settings/port"


def test_error_entry_has_the_telnyx_shape() -> None:
    entry = InvalidParameter("Invalid dnis.", pointer="/inbound/dnis_number_format").to_entry()
    assert entry == {
        "code": "10015",
        "title": "Bad Request",
        "detail": "Invalid dnis.",
        "source": {"pointer": "/inbound/dnis_number_format"},
        "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/10015"},
    }
    assert "source" not in AuthenticationFailed().to_entry()
    assert InvalidParameter("x", parameter="sort").to_entry()["source"] == {
        "pointer": "/",
        "parameter": "sort",
    }


def test_telnyx_errors_carry_the_first_status_and_all_entries() -> None:
    errs = TelnyxErrors([InvalidParameter("a", pointer="/a"), InvalidParameter("b", pointer="/b")])
    assert errs.status == 422 and [e.pointer for e in errs.errors] == ["/a", "/b"]
    with pytest.raises(ValueError):
        TelnyxErrors([])


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def test_every_telnyx_error_has_a_docstring_and_a_unique_status_code_title() -> None:
    classes = [c for c in _all_subclasses(TelnyxError) if c.__module__ == errors_module.__name__]
    assert len(classes) >= 15  # the tree in trunkline.errors
    seen: dict[tuple[int, str, str], str] = {}
    for cls in classes:
        assert inspect.getdoc(cls) and cls.__doc__ != TelnyxError.__doc__, f"{cls.__name__} has no docstring"
        key = (cls.status, cls.code, cls.title)
        assert key not in seen, f"{cls.__name__} and {seen[key]} are both {key}"
        seen[key] = cls.__name__
        assert cls.code.isdigit(), cls
        assert 400 <= cls.status <= 599, cls


def test_query_parameter_errors_point_at_the_parameter() -> None:
    from trunkline.http.handlers import _query_error

    page = _query_error({"loc": ("query", "page[size]"), "msg": "Input should be less than or equal to 250"})
    assert (page.status, page.title, page.pointer, page.parameter) == (
        422,
        "Invalid pagination",
        "/page/size",
        "page[size]",
    )
    sort = _query_error({"loc": ("query", "sort"), "msg": "Input should be 'created_at'"})
    assert (sort.title, sort.pointer) == ("Invalid sorting value", "/sort")
    other = _query_error({"loc": ("query", "filter[port]"), "msg": "Input should be a valid integer"})
    assert (other.title, other.pointer) == ("Bad Request", "/filter/port")


def test_partial_model_makes_optional_nested_models_partial_too() -> None:
    from pydantic import BaseModel

    from trunkline.resources._base import TelnyxModel, partial_model

    class Inner(TelnyxModel):
        a: int
        b: int

    class Outer(TelnyxModel):
        inner: Inner | None = None

    patch = partial_model(Outer).model_validate({"inner": {"a": 1}})
    assert patch.model_dump(exclude_unset=True) == {"inner": {"a": 1}}
    assert isinstance(patch.inner, BaseModel)
