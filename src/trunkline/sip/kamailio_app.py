"""The edge's Python half: what Kamailio's workers run through app_python3 for every outbound call.

kamailio.cfg calls these methods with `python_exec("<method>")`
(https://kamailio.org/docs/modules/5.6.x/modules/app_python3.html#app_python3.f.python_exec); they
read the call and its settings from pseudo-variables and answer in `$var(...)` variables, through the
`KSR` module Kamailio gives the interpreter (https://www.kamailio.org/docs/tutorials/devel/kamailio-kemi-framework/).
The decisions themselves are sip/numbers.py and sip/policy.py; this module only moves values in and
out and spools the call log (sip/call_log.py). The boot file trunkline renders (sip/render.py,
`kamailio_app.py` in the run directory) puts this package on the path and calls `mod_init`.

Every output is set on every call: `$var` values outlive the message in a worker process.
"""

from __future__ import annotations

import random
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import KSR  # type: ignore[import-not-found]  # provided by Kamailio's app_python3

from trunkline import rating
from trunkline.sip import counters, numbers, policy, routing
from trunkline.sip.call_log import Writer

# A final status the caller got → Telnyx's hangup_cause (the values of the SDK's call.hangup event,
# telnyx.types CallHangupWebhookEvent payload.hangup_cause).
_HANGUP_CAUSES = {
    403: "call_rejected",
    404: "not_found",
    408: "timeout",
    480: "timeout",
    484: "not_found",
    486: "user_busy",
    487: "originator_cancel",
    600: "user_busy",
    603: "call_rejected",
    604: "not_found",
}


def hangup_cause(status: int) -> str:
    return _HANGUP_CAUSES.get(status, "unspecified")


def _now_ms(offset_ms: int) -> int:
    """The server clock in ms: real time moved by the offset the call was admitted with."""
    return int(time.time() * 1000) + offset_ms


# The record of an INVITE is named by the request itself (Call-ID, From tag, CSeq: RFC 3261 section
# 17.2.3 matches a retransmission by the same), so a retransmission that a worker processes again (a
# refusal is stateless: nothing absorbs it) writes the same record, which the import keeps once.
_RECORDS = uuid.UUID("6b1f7c1e-2d0a-4c55-9a57-3f3e6c0f2a10")


def record_id(call_id: str, from_tag: str, cseq: str) -> str:
    return str(uuid.uuid5(_RECORDS, f"{call_id}\x00{from_tag}\x00{cseq}"))


def _route(uri: str) -> str:
    """`sip:127.0.1.74:5060;transport=tls` → `127.0.1.74:5060`."""
    return uri.removeprefix("sip:").split(";", 1)[0]


def routes_tried(final_status: int) -> list[dict[str, Any]] | None:
    """Every route an inbound call tried, in order, with what each answered; the last is the one that
    answered the call or gave the final status. None for calls that went to no route list."""
    current = _s("$dlg_var(route)")
    if not current:
        return None
    tried = []
    for entry in filter(None, _s("$dlg_var(tried)").split(";")):
        route, _, status = entry.rpartition("=")
        tried.append({"route": route, "status": int(status) if status.isdigit() else None})
    return [*tried, {"route": _route(current), "status": final_status}]


def _s(name: str) -> str:
    value = KSR.pv.get(name)
    return "" if value is None else str(value)


def _i(name: str, default: int = 0) -> int:
    value = KSR.pv.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# How often, at most, an unreachable Redis is logged: every call meets it, the log must not.
_OUTAGE_LOG_SECONDS = 10.0


class App:
    def __init__(self, spool: str, counters: dict[str, Any] | None = None) -> None:
        self.writer = Writer(Path(spool))
        self.dialled: numbers.Dialled | None = None
        self.real = 0.0
        self.rng = random.Random()
        self.shared: SharedCounts | None = SharedCounts(**counters) if counters else None

    def child_init(self, rank: int) -> int:
        # mod_init runs before Kamailio forks its workers: without a seed of its own, every worker
        # would draw the same round-robin orders, call for call.
        self.rng = random.Random()
        return 0

    # -- outbound policy ------------------------------------------------------------------------

    def classify(self, msg: Any, args: str = "") -> int:
        """$rU under the caller's localization → $var(e164), $var(emergency), $var(prefixes), $var(day)."""
        self.real = time.time()
        dialled = numbers.classify(_s("$rU"), _s("$xavp(c=>localization)") or None)
        self.dialled = dialled
        now = policy.edge_now(_i("$xavp(c=>clock_offset_ms)"), self.real)
        prefixes = rating.candidate_prefixes((dialled.e164 or "")[1:])
        KSR.pv.sets("$var(e164)", dialled.e164 or "")
        KSR.pv.seti("$var(emergency)", 1 if dialled.emergency else 0)
        # Digits only, so safe inside the SQL text of the rate lookup.
        KSR.pv.sets("$var(prefixes)", ",".join(f"'{p}'" for p in prefixes) or "''")
        KSR.pv.sets("$var(day)", f"{now:%Y-%m-%d}")
        return 1

    def police(self, msg: Any, args: str = "") -> int:
        """The profile's rules → $var(rcode) 0 (admitted) or a refusal; the calls_per_cld counter."""
        dialled = self.dialled or numbers.Dialled(None, (), False)
        profile = policy.Profile.from_view(
            whitelist=_s("$xavp(c=>whitelist)"),
            max_rate=_s("$xavp(c=>max_rate)"),
            spend_limit=_s("$xavp(c=>spend_limit)"),
            window_start=_s("$xavp(c=>window_start)"),
            window_end=_s("$xavp(c=>window_end)"),
            calls_per_cld=_s("$xavp(c=>calls_per_cld)"),
        )
        verdict = policy.police(
            dialled=dialled,
            profile=profile,
            profile_id=_s("$var(ovp)"),
            rate_deck=_i("$xavp(c=>rate_deck)") > 0,
            rate=_rate(_s("$var(rate)")),
            spent_nanos=_i("$var(spent)"),
            now=policy.edge_now(_i("$xavp(c=>clock_offset_ms)"), self.real),
        )
        if isinstance(verdict, policy.Refusal):
            _refuse(verdict)
            KSR.pv.sets("$var(cldkey)", "")
            KSR.pv.seti("$var(cldmax)", -1)
            KSR.pv.seti("$var(cldttl)", 0)
        else:
            KSR.pv.seti("$var(rcode)", 0)
            KSR.pv.sets("$var(cldkey)", verdict.cld_key)
            KSR.pv.seti("$var(cldmax)", verdict.cld_limit)
            KSR.pv.seti("$var(cldttl)", verdict.cld_ttl)
        ani = _s("$xavp(c=>ani_override)")
        applies = policy.applies_ani_override(
            ani, _s("$xavp(c=>ani_override_type)"), emergency=dialled.emergency
        )
        KSR.pv.sets("$var(ani)", ani if applies else "")
        return 1

    def invalid(self, msg: Any, args: str = "") -> int:
        _refuse(policy.invalid_number())
        return 1

    # -- channel limits -----------------------------------------------------------------------

    def over_limit(self, msg: Any, args: str = "") -> int:
        """The limit in $var(over) (kamailio.cfg route TAKE, counts in memory) → the refusal."""
        _refuse_now(policy.over_limit(_s("$var(over)")))
        return 1

    def take(self, msg: Any, args: str = "") -> int:
        """Count the call in Redis against every limit that applies → $var(code) 0 and $var(cntm),
        or the refusal."""
        if self.shared is None:  # not rendered without shared counts
            return -1
        self.shared.take()
        return 1

    def release(self, msg: Any, args: str = "") -> int:
        if self.shared is not None:
            self.shared.release(_s("$dlg_var(cnt)"))
        return 1

    def renew(self, msg: Any, args: str = "") -> int:
        if self.shared is not None:
            self.shared.renew()
        return 1

    # -- inbound calls --------------------------------------------------------------------------

    def inbound_number(self, msg: Any, args: str = "") -> int:
        """The number a carrier called ($rU) → $var(e164), "" when it is no valid number."""
        self.real = time.time()
        dialled = numbers.classify(_s("$rU"), None)
        self.dialled = dialled
        KSR.pv.sets("$var(e164)", dialled.e164 or "")
        return 1

    def inbound_formats(self, msg: Any, args: str = "") -> int:
        """The connection's number formats → $var(dnis) (request URI and To), $var(aniuser) (From, PAI).
        Without a number ($var(e164) empty: a call to a SIP subdomain) the user part goes as it came."""
        e164 = _s("$var(e164)")
        if e164:
            called = numbers.dnis(e164, _s("$xavp(ib=>dnis_format)"), _s("$xavp(ib=>user_name)"))
        else:
            self.dialled = None  # the record's called party is then $rU (_start)
            called = _s("$rU")
        KSR.pv.sets("$var(dnis)", called)
        caller = _s("$fU")
        formatted = numbers.ani(caller, e164, _s("$xavp(ib=>ani_format)")) if caller else caller
        KSR.pv.sets("$var(aniuser)", formatted)
        return 1

    def routes(self, msg: Any, args: str = "") -> int:
        """The rows of view kam_route in $xavp(rt) → $avp(rts), the URIs in the order to try them
        (sip/routing.py), and their number in $avp(rn). $var(proto) is the transport parameter."""
        found: list[routing.Route] = []
        while (address := KSR.pv.get(f"$xavp(rt[{len(found)}]=>address)")) is not None:
            row = f"$xavp(rt[{len(found)}]=>"
            found.append(
                routing.Route(
                    address=str(address),
                    port=_i(row + "port)"),
                    rank=_i(row + "priority)", 4),
                    created_at=_s(row + "created_at)"),
                    group=_s(row + "grp)"),
                    srv_priority=_i(row + "srv_priority)"),
                    srv_weight=_i(row + "srv_weight)"),
                )
            )
        ordered = routing.order(found, _s("$xavp(ib=>routing)"), self.rng)
        proto = _s("$var(proto)")
        # An AVP assignment pushes onto the front of its list: the last route first, so that
        # $(avp(rts)[0]) is the first to try.
        for route in reversed(ordered):
            KSR.pv.sets("$avp(rts)", f"sip:{route.uri}{proto}")
        KSR.pv.seti("$avp(rn)", len(ordered))
        return 1

    # -- the call log -----------------------------------------------------------------------------

    def _start(self, offset_ms: int) -> tuple[str, int, dict[str, Any]]:
        localization = _s("$xavp(c=>localization)") or None
        dialled = self.dialled
        cld = dialled.e164 if dialled is not None and dialled.e164 else _s("$rU")
        caller = _s("$fU")
        return (
            record_id(_s("$ci"), _s("$ft"), _s("$cs")),
            _now_ms(offset_ms),
            {
                "user_id": _s("$var(account)"),
                "connection_id": _s("$var(caller)"),
                "call_session_id": str(uuid.uuid4()),
                "sip_call_id": _s("$ci"),
                "direction": _s("$var(direction)") or "outbound",
                "cli": numbers.e164_or_raw(caller, localization) if caller else "",
                "cld": cld,
                "destination_country": dialled.countries[0] if dialled and dialled.countries else None,
                "rate": _s("$var(rate)") or None,
            },
        )

    def admitted(self, msg: Any, args: str = "") -> int:
        """Spool the start of an admitted call; its dialog keeps the record id for later events."""
        offset = _i("$xavp(c=>clock_offset_ms)")
        record_id, at, data = self._start(offset)
        self.writer.write((record_id, "start", at, data))
        KSR.pv.sets("$dlg_var(rec)", record_id)
        KSR.pv.sets("$dlg_var(off)", str(offset))
        self.dialled = None
        return 1

    def refused(self, msg: Any, args: str = "") -> int:
        """Spool a refused attempt of a recognised connection: start and end at once."""
        if not _s("$var(account)"):
            return 1
        offset = _i("$xavp(c=>clock_offset_ms)")
        record_id, at, data = self._start(offset)
        status = _i("$var(code)")
        end = {
            "sip_status": status,
            "sip_reason": _s("$var(reason)"),
            "d_code": _s("$var(dcode)") or None,
            "hangup_cause": hangup_cause(status),
            "hangup_source": "callee",
        }
        self.writer.write((record_id, "start", at, data), (record_id, "end", at, end))
        self.dialled = None
        return 1

    def answered(self, msg: Any, args: str = "") -> int:
        record_id = _s("$dlg_var(rec)")
        if record_id:
            at = _now_ms(_i("$dlg_var(off)"))
            self.writer.write((record_id, "answer", at, {}))
        return 1

    def ended(self, msg: Any, args: str = "") -> int:
        """A call that was answered ended: BYE from either side, or the dialog's timeout."""
        record_id = _s("$dlg_var(rec)")
        if record_id:
            at = _now_ms(_i("$dlg_var(off)"))
            end = {
                "sip_status": 200,
                "sip_reason": "OK",
                "d_code": None,
                "hangup_cause": "normal_clearing",
                "hangup_source": _s("$var(hsrc)") or "unknown",
                "routes": routes_tried(200),
            }
            self.writer.write((record_id, "end", at, end))
        return 1

    def route_failed(self, msg: Any, args: str = "") -> int:
        """An inbound call leaves the route in $dlg_var(route), which answered $var(rstatus), for the next."""
        tried = _s("$dlg_var(tried)")
        KSR.pv.sets("$dlg_var(tried)", f"{tried}{_route(_s('$dlg_var(route)'))}={_i('$var(rstatus)')};")
        return 1

    def failed(self, msg: Any, args: str = "") -> int:
        """An admitted call that got no answer: the final status the caller got, $var(fcode)/$var(freason)."""
        record_id = _s("$dlg_var(rec)")
        if record_id:
            status = _i("$var(fcode)")
            at = _now_ms(_i("$dlg_var(off)"))
            end = {
                "sip_status": status,
                "sip_reason": _s("$var(freason)"),
                "d_code": None,
                "hangup_cause": hangup_cause(status),
                "hangup_source": "caller" if status == 487 else "callee",
                # Set by the inbound routes' failure route for the route it leaves.
                "routes": routes_tried(_i("$var(rstatus)")),
            }
            self.writer.write((record_id, "end", at, end))
        return 1


def _refuse(refusal: policy.Refusal) -> None:
    KSR.pv.seti("$var(rcode)", refusal.status)
    KSR.pv.sets("$var(rreason)", refusal.reason)
    KSR.pv.sets("$var(rdcode)", refusal.code)


def _rate(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _refuse_now(refusal: policy.Refusal) -> None:
    """A refusal in the variables route REFUSE and route TAKE answer with."""
    KSR.pv.seti("$var(code)", refusal.status)
    KSR.pv.sets("$var(reason)", refusal.reason)
    KSR.pv.sets("$var(dcode)", refusal.code)


class SharedCounts:
    """The calls of this Kamailio in Redis (sip/counters.py), read from and answered in kamailio.cfg's
    variables (route TAKE), with the outage policy of TRUNKLINE_SIP_COUNTERS_UNAVAILABLE."""

    def __init__(self, *, url: str, prefix: str, lease_seconds: float, unavailable: str) -> None:
        # A name per Kamailio run, made before the fork so every worker shares it.
        self.edge = uuid.uuid4().hex[:16]
        self.counters = counters.SharedCounters(
            url, prefix=prefix, edge=self.edge, lease_seconds=lease_seconds
        )
        self.admit_when_down = unavailable == "admit"
        self._logged = 0.0
        # Calls that ended while Redis was down, released at this worker's next call: left in the
        # edge's hash, they would be renewed for ever.
        self._unreleased: list[str] = []

    def take(self) -> None:
        found: list[counters.Counter] = []
        cld = None
        if _s("$var(direction)") == "outbound":
            found.append(counters.Counter("outc", _s("$var(caller)"), _i("$var(limit)", -1)))
            if ovp := _s("$var(ovp)"):
                found.append(counters.Counter("ovp", ovp, _i("$var(ovplimit)", -1)))
            found.append(counters.Counter("acct", _s("$var(account)"), _i("$var(acctlimit)", -1)))
            if key := _s("$var(cldkey)"):
                cld = counters.CallsPerCld(key, _i("$var(cldmax)", -1), _i("$var(cldttl)", 1))
        if incon := _s("$var(incon)"):
            found.append(counters.Counter("inc", incon, _i("$var(inlimit)", -1)))
        call = f"{_s('$ci')}:{_s('$ft')}"
        KSR.pv.sets("$var(cntm)", "")
        try:
            taken = self.counters.take(call, found, cld)
        except counters.Unavailable as exc:
            self._outage(exc)
            if self.admit_when_down:
                KSR.pv.seti("$var(code)", 0)
            else:
                _refuse_now(policy.Refusal(503, "Service Unavailable", ""))
            return
        if isinstance(taken, counters.Over):
            _refuse_now(policy.over_limit(taken.kind))
            return
        KSR.pv.seti("$var(code)", 0)
        KSR.pv.sets("$var(cntm)", taken)
        self._release_late()

    def release(self, member: str) -> None:
        if member:  # "": admitted uncounted while Redis was down
            self._unreleased.append(member)
        self._release_late()

    def _release_late(self) -> None:
        while self._unreleased:
            try:
                self.counters.release(self._unreleased[-1])
            except counters.Unavailable as exc:
                self._outage(exc)
                return
            self._unreleased.pop()

    def renew(self) -> None:
        try:
            self.counters.renew()
        except counters.Unavailable as exc:
            self._outage(exc)

    def _outage(self, exc: counters.Unavailable) -> None:
        now = time.monotonic()
        if now - self._logged >= _OUTAGE_LOG_SECONDS:
            self._logged = now
            verdict = "admitted uncounted" if self.admit_when_down else "refused with 503"
            setting = "TRUNKLINE_SIP_COUNTERS_UNAVAILABLE"
            KSR.warn(f"shared call counts unavailable, calls are {verdict} ({setting}): {exc}\n")
