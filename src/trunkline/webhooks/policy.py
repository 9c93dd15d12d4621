"""The delivery policy as data: what a response means, where and when the next attempt goes.

Telnyx: "Failed webhook deliveries are automatically retried with exponential backoff", a 2xx is
success (https://developers.telnyx.com/development/api-fundamentals/webhooks/receiving-webhooks);
"Other 4xx: Not retried; 5xx: Retried", 408 and 429 retried
(https://developers.telnyx.com/docs/voice/programmable-voice/voice-api-webhooks); after the primary
fails, "attempt to send the event to your Failover URL"
(https://support.telnyx.com/en/articles/4351104-sip-connection-settings); a receiver has 2000 ms
unless `webhook_timeout_secs` says otherwise. The counts and delays are trunkline's (docs/webhooks.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_TIMEOUT_SECS = 2.0
# Statuses outside 2xx that are still worth another try: timeouts and throttling.
RETRIED_4XX = frozenset({408, 429})

Kind = Literal["delivered", "retry", "refused"]


def timeout_of(timeout_secs: int | None) -> float:
    """A connection's `webhook_timeout_secs` (0..30) in seconds; null or 0: the 2 s default."""
    return float(timeout_secs) if timeout_secs else DEFAULT_TIMEOUT_SECS


def classify(status_code: int | None, *, blocked: bool = False) -> Kind:
    """2xx: delivered. No response (refused connection, timeout), 5xx, 408, 429: retry. Anything else
    (3xx, which is not followed, and the other 4xx): the receiver refused this URL. A URL this server
    may not send to (`blocked`: webhooks/addresses.py) is refused as well: no later try would differ."""
    if blocked:
        return "refused"
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code >= 500 or status_code in RETRIED_4XX:
        return "retry"
    return "refused"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n+1 waits `delay(n)` after attempt n: base·2^(n-1) capped, with equal jitter (half of
    it fixed, half random), so that a receiver's events do not all come back at once."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    per_url: int = 3  # attempts in a row to one URL before switching to the other one
    retry_seconds: float = 86_400.0  # how long after it was written an event is still tried

    def delay(self, attempts: int, rand: float) -> float:
        """Seconds before the next attempt after `attempts` (>= 1) failed; `rand` in [0, 1)."""
        full = min(self.cap_seconds, self.base_seconds * 2 ** (attempts - 1))
        return float(full / 2 + full / 2 * rand)

    def after(
        self,
        event: Mapping[Any, Any],
        *,
        status_code: int | None,
        now: dt.datetime,
        rand: float,
        blocked: bool = False,
        attempt: int | None = None,
    ) -> dict[str, Any]:
        """The event's new columns after attempt number `attempt` (by default the one after
        `event["attempts"]`) to `event["next_url"]` that got `status_code` (or was `blocked`, not
        sent at all).

        `event` is the outbox row (store/schema.py, webhook_event); times are returned as datetimes
        under the column names, for store/webhook_outbox.py to write."""
        url = str(event["next_url"])
        kind = classify(status_code, blocked=blocked)
        if kind == "delivered":
            return {"status": "delivered", "delivered_at": now, "delivered_to": url}
        primary, failover = str(event["url"]), event["failover_url"]
        other = (failover if url == primary else primary) if failover else None
        attempts = attempt if attempt is not None else int(event["attempts"]) + 1
        if kind == "refused":
            if url != primary or other is None:
                return {"status": "failed"}
            return {"next_url": other, "round_attempts": 0, "next_attempt_at": now}
        in_a_row = int(event["round_attempts"]) + 1
        next_url = url
        if other is not None and in_a_row >= self.per_url:
            next_url, in_a_row = other, 0
        at = now + dt.timedelta(seconds=self.delay(attempts, rand))
        created = event["created_at"]
        if isinstance(created, str):
            created = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        if at > created + dt.timedelta(seconds=self.retry_seconds):
            return {"status": "failed"}
        return {"next_url": next_url, "round_attempts": in_a_row, "next_attempt_at": at}
