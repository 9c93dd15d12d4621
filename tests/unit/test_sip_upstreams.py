"""sip.upstreams: TRUNKLINE_SIP_UPSTREAMS read strictly, each bad entry named; edge.upstreams' precedence."""

from __future__ import annotations

import pytest

from trunkline import edge
from trunkline.config import Settings
from trunkline.sip import upstreams
from trunkline.sip.state import Upstream


def test_entries_are_kept_in_order_with_their_transport() -> None:
    parsed = upstreams.parse(
        " 198.51.100.20:5060, 198.51.100.21:5080;transport=TCP ,,203.0.113.7:5060;transport=udp"
    )
    assert parsed == (
        Upstream("198.51.100.20", 5060),
        Upstream("198.51.100.21", 5080, "tcp"),
        Upstream("203.0.113.7", 5060),
    )
    assert [u.uri for u in parsed] == [
        "sip:198.51.100.20:5060",
        "sip:198.51.100.21:5080;transport=tcp",
        "sip:203.0.113.7:5060",
    ]


def test_the_list_gives_the_first_gateway_the_highest_priority() -> None:
    listed = upstreams.dispatcher_list(upstreams.parse("192.0.2.1:5060,192.0.2.2:5062;transport=tcp"))
    assert listed.splitlines()[1:] == ["1 sip:192.0.2.1:5060 0 2", "1 sip:192.0.2.2:5062;transport=tcp 0 1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gw.example.net:5060",
            "bad upstream 'gw.example.net:5060': 'gw.example.net' is not an IPv4 address",
        ),
        ("192.0.2.1", "bad upstream '192.0.2.1': not of the form host:port"),
        ("192.0.2.1:0", "port '0' is not a number from 1 to 65535"),
        ("192.0.2.1:70000", "port '70000' is not a number from 1 to 65535"),
        ("192.0.2.1:", "port '' is not a number"),
        ("192.0.2.1:5060;transport=tls", "transport 'tls' is not udp or tcp"),
        ("192.0.2.1:5060;lr", "unknown parameter 'lr'"),
        ("[2001:db8::1]:5060", "bad upstream '[2001:db8::1]:5060'"),
        ("192.0.2.1:5060,192.0.2.1:5060;transport=tcp", "'192.0.2.1:5060;transport=tcp' is listed twice"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(upstreams.UpstreamError) as caught:
        upstreams.parse("192.0.2.9:5060, " + text)
    assert str(caught.value).startswith("TRUNKLINE_SIP_UPSTREAMS: ")
    assert message in str(caught.value)


def test_the_list_setting_wins_over_the_single_one_which_still_works() -> None:
    single = Settings(sip_upstream="192.0.2.1:5060")
    assert edge.upstreams(single) == (Upstream("192.0.2.1", 5060),)
    both = Settings(sip_upstream="192.0.2.1:5060", sip_upstreams="192.0.2.2:5060,192.0.2.3:5060")
    assert edge.upstreams(both) == (Upstream("192.0.2.2", 5060), Upstream("192.0.2.3", 5060))
    assert edge.upstreams(Settings(sip_upstreams=" ")) == ()
    with pytest.raises(upstreams.UpstreamError, match=r"^TRUNKLINE_SIP_UPSTREAM: bad upstream 'pbx'"):
        edge.upstreams(Settings(sip_upstream="pbx"))
