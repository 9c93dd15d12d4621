"""Every table trunkline owns. Kamailio reads some of them through views (see the migrations).

Timestamps are fixed-width ISO-8601 UTC strings with milliseconds (`2026-11-26T18:40:25.123Z`): the
format Telnyx returns, identical on both engines, and ordered the same as text and as time.
Records whose Telnyx shape is large keep it in `document` (JSON text, the response body's `data` as
stored); the columns beside it are what lists filter and sort on, and what the SIP edge reads.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = sa.String(36)
UserId = sa.String(64)
Timestamp = sa.String(24)


def _stamps() -> list[sa.Column[str]]:
    return [
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    ]


api_key = sa.Table(
    "api_key",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", UserId, nullable=False, index=True),
    # SHA-256 of the whole key: keys carry 256 bits of randomness, so a fast hash is enough.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.String(255), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

outbound_voice_profile = sa.Table(
    "outbound_voice_profile",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("traffic_type", sa.String(32), nullable=False),
    sa.Column("service_plan", sa.String(32), nullable=False),
    sa.Column("usage_payment_method", sa.String(32), nullable=False),
    sa.Column("concurrent_call_limit", sa.Integer, nullable=True),
    sa.Column("document", sa.Text, nullable=False),
    *_stamps(),
    # Every list order within an account (store/paging.py: the key, then created_at, then id), read
    # from an index rather than sorted (migration 0009).
    sa.Index("ix_outbound_voice_profile_user_id_created_at_id", "user_id", "created_at", "id"),
    *(
        sa.Index(f"ix_outbound_voice_profile_user_id_{key}", "user_id", key, "created_at", "id")
        for key in ("name", "enabled", "traffic_type", "service_plan", "usage_payment_method")
    ),
)

connection = sa.Table(
    "connection",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("connection_name", sa.String(255), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column(
        "outbound_voice_profile_id",
        Id,
        sa.ForeignKey("outbound_voice_profile.id", ondelete="RESTRICT"),
        nullable=True,
        index=True,
    ),
    # The SIP identity: unique across the server, case-insensitively, as Telnyx's v1 API documented
    # (https://developers.telnyx.com/openapi/v1/full_reference/mission_control_docs/tag/Credential-Authentication-for-Connections-V1/).
    sa.Column("user_name", sa.String(64), nullable=True),
    sa.Column("user_name_key", sa.String(64), nullable=True, unique=True),
    sa.Column("ip_authentication_token", sa.String(64), nullable=True, unique=True),
    sa.Column("tech_prefix", sa.String(8), nullable=True),
    sa.Column("inbound_channel_limit", sa.Integer, nullable=True),
    sa.Column("outbound_channel_limit", sa.Integer, nullable=True),
    # `inbound.sip_subdomain` of IP and FQDN connections: one connection per subdomain on the server
    # (the edge routes `sip:anything@<subdomain>.<TRUNKLINE_SIP_DOMAIN>` by it; migration 0010).
    sa.Column("sip_subdomain", sa.String(63), nullable=True),
    sa.Column("document", sa.Text, nullable=False),
    *_stamps(),
    # Every list order (store/paging.py: the key, then created_at, then id) within an account, with or
    # without the kind, read from an index rather than sorted (migration 0005). The connection_name
    # orders are in SEARCH_OBJECTS: PostgreSQL's need NULLS FIRST, which SQLite's syntax lacks.
    sa.Index("ix_connection_user_id_created_at_id", "user_id", "created_at", "id"),
    sa.Index("uq_connection_sip_subdomain", "sip_subdomain", unique=True),
    sa.Index("ix_connection_user_id_kind_created_at_id", "user_id", "kind", "created_at", "id"),
    sa.Index("ix_connection_user_id_active_created_at_id", "user_id", "active", "created_at", "id"),
    sa.Index(
        "ix_connection_user_id_kind_active_created_at_id", "user_id", "kind", "active", "created_at", "id"
    ),
    sa.Index(
        "ix_connection_user_id_outbound_voice_profile_id_created_at_id",
        "user_id",
        "outbound_voice_profile_id",
        "created_at",
        "id",
    ),
)

# How many connections each account holds of each kind, kept exact by triggers in the transaction
# that inserts or deletes one (migration 0005): an unfiltered list's `meta.total_results` is one read.
connection_count = sa.Table(
    "connection_count",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# How many rows each account holds in `table_name` (ip, fqdn, outbound_voice_profile, access_ip_range),
# kept exact by triggers in the transaction that inserts or deletes one (migration 0009): an
# unfiltered list's `meta.total_results` is one read (store/paging.py, `account_total`).
account_row_count = sa.Table(
    "account_row_count",
    metadata,
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# How many connections name each outbound voice profile (`connection.outbound_voice_profile_id`), kept
# exact by triggers on `connection` in the transaction that inserts, deletes or re-points one
# (migration 0012): a profile's `connections_count` is one read (store/connections.py,
# `count_by_profile`). A missing row is 0; the row goes with its profile.
profile_connection_count = sa.Table(
    "profile_connection_count",
    metadata,
    sa.Column(
        "outbound_voice_profile_id",
        Id,
        # Named by hand: the naming convention's name would pass PostgreSQL's 63-byte identifiers.
        sa.ForeignKey(
            "outbound_voice_profile.id",
            ondelete="CASCADE",
            name="fk_profile_connection_count_outbound_voice_profile_id",
        ),
        primary_key=True,
    ),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# How many writes (inserts, updates, deletes) each account's rows of `table_name` have had, bumped by
# triggers in the writing transaction (migration 0013): the version what a list learned is valid for
# (store/list_memo.py). A missing row is version 0.
list_version = sa.Table(
    "list_version",
    metadata,
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("writes", sa.BigInteger, nullable=False),
)

# Objects migrations 0005 and 0009 make that differ by engine, outside this metadata so that autogenerate
# neither drops them nor reports them (migrations/env.py):
# - PostgreSQL: `ix_connection_name_trgm`, a pg_trgm GIN index on lower(connection_name)
#   (https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX), and the connection_name
#   orders with NULLS FIRST; the trigger functions behind connection_count (and, migration 0012,
#   profile_connection_count), which autogenerate does not compare.
# - SQLite: `connection_name_trigram`, an FTS5 table with the trigram tokenizer
#   (https://www.sqlite.org/fts5.html#the_trigram_tokenizer) whose rowid is the connection's numeric
#   id, kept in step by triggers, its shadow tables, and the connection_name orders.
# - Both, for outbound voice profile names (0009): `ix_outbound_voice_profile_name_trgm` on PostgreSQL,
#   `outbound_voice_profile_name_trigram` on SQLite, the same way.
_FTS5_SHADOWS = ("data", "idx", "content", "docsize", "config")
SEARCH_OBJECTS = frozenset(
    {
        "ix_connection_name_trgm",
        "ix_connection_user_id_connection_name_created_at_id",
        "ix_connection_user_id_kind_connection_name_created_at_id",
        "ix_outbound_voice_profile_name_trgm",
        *(
            name
            for table in ("connection_name_trigram", "outbound_voice_profile_name_trigram")
            for name in (table, *(f"{table}_{shadow}" for shadow in _FTS5_SHADOWS))
        ),
    }
)

# Digest secrets of credential connections: what SIP authentication needs, never the password.
sip_credential = sa.Table(
    "sip_credential",
    metadata,
    sa.Column("connection_id", Id, sa.ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("realm", sa.String(128), nullable=False),
    sa.Column("ha1", sa.String(32), nullable=False),  # MD5(username:realm:password)
    sa.Column("ha1b", sa.String(32), nullable=False),  # MD5(username@realm:realm:password)
    sa.Column("ha1_sha256", sa.String(64), nullable=False),  # SHA-256(username:realm:password), RFC 8760
)

ip = sa.Table(
    "ip",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column(
        "connection_id", Id, sa.ForeignKey("connection.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    sa.Column("ip_address", sa.String(45), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    *_stamps(),
    sa.UniqueConstraint("ip_address", "port"),
    # The list's order within an account, alone and after each filter (migration 0009).
    *(
        sa.Index(
            "_".join(["ix_ip_user_id", *filtered, "created_at_id"]), "user_id", *filtered, "created_at", "id"
        )
        for filtered in ((), ("connection_id",), ("ip_address",), ("port",))
    ),
)

fqdn = sa.Table(
    "fqdn",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column(
        "connection_id", Id, sa.ForeignKey("connection.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("fqdn", sa.String(255), nullable=False, index=True),
    sa.Column("dns_record_type", sa.String(8), nullable=False),
    sa.Column("port", sa.Integer, nullable=True),
    *_stamps(),
    # The list's order within an account, alone and after each filter (migration 0009).
    *(
        sa.Index(
            "_".join(["ix_fqdn_user_id", *filtered, "created_at_id"]),
            "user_id",
            *filtered,
            "created_at",
            "id",
        )
        for filtered in ((), ("connection_id",), ("fqdn",), ("port",), ("dns_record_type",))
    ),
)

# The addresses FQDN records resolved to (A: the FQDN's port; SRV: each target and port), written by
# the SIP edge's resolver and admitted through the `kam_address` view (migration 0002).
fqdn_address = sa.Table(
    "fqdn_address",
    metadata,
    sa.Column("fqdn_id", Id, sa.ForeignKey("fqdn.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ip_address", sa.String(45), primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True),
    # An SRV target's priority and weight (RFC 2782), 0 for an A record: the order inbound calls try
    # the FQDN's addresses in (src/trunkline/sip/routing.py; migration 0010).
    sa.Column("srv_priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("srv_weight", sa.Integer, nullable=False, server_default="0"),
    sa.Column("resolved_at", Timestamp, nullable=False),
)

access_ip_range = sa.Table(
    "access_ip_range",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("cidr_block", sa.String(64), nullable=False),
    sa.Column("description", sa.String(255), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    *_stamps(),
    sa.UniqueConstraint("user_id", "cidr_block"),
    # The list's order within an account; `filter[created_at]` ranges too (migration 0009).
    sa.Index("ix_access_ip_range_user_id_created_at_id", "user_id", "created_at", "id"),
)

# Per-account limits the operator sets (`trunkline accounts set-limits`); the SIP edge reads them through
# `kam_connection` (migration 0004). Telnyx sets an account's concurrent-call limit through support, not
# its API (https://developers.telnyx.com/docs/voice/sip-trunking/configuration/concurrent-limits).
# NULL or no row: unlimited.
account_limit = sa.Table(
    "account_limit",
    metadata,
    sa.Column("user_id", UserId, primary_key=True),
    sa.Column("concurrent_calls", sa.Integer, nullable=True),
    *_stamps(),
)

# A counter per topic, bumped in the same transaction as the change it announces. SIP edge processes
# poll it (one indexed read) to learn that what they enforce is stale, on any number of machines.
config_version = sa.Table(
    "config_version",
    metadata,
    sa.Column("topic", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Registrations set through the control API (`PUT /_trunkline/registrations/{id}`): what
# check_registration_status reports for a credential connection without a phone. They go with their
# connection (foreign key cascade) and with a reset of the account (`user_id`).
virtual_registration = sa.Table(
    "virtual_registration",
    metadata,
    sa.Column("connection_id", Id, sa.ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", UserId, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ip_address", sa.String(45), nullable=True),
    sa.Column("port", sa.Integer, nullable=True),
    sa.Column("transport", sa.String(8), nullable=True),
    sa.Column("user_agent", sa.String(255), nullable=True),
    # When a `Registered` one lapses into `Expired`; null for the other statuses.
    sa.Column("expires_at", Timestamp, nullable=True),
    *_stamps(),
)

# The rate deck (`trunkline rates import`, docs/rates.md): USD per minute by the leading digits of an
# E.164 number (no "+"); the longest prefix wins. One deck for the whole server, replaced whole by each
# import. `rate_deck` holds one row (id 1) while a deck is loaded: without it, rate rules are off.
rate = sa.Table(
    "rate",
    metadata,
    sa.Column("prefix", sa.String(15), primary_key=True),
    sa.Column("rate", sa.String(32), nullable=False),  # a decimal, e.g. "0.0045", exactly as imported
    sa.Column("description", sa.String(255), nullable=True),
)

rate_deck = sa.Table(
    "rate_deck",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rates", sa.Integer, nullable=False),
    sa.Column("source", sa.String(255), nullable=True),
    sa.Column("imported_at", Timestamp, nullable=False),
)

# One row per call attempt through the SIP edge, admitted or refused (docs/calls.md). The edge spools
# what it sees in its own file; the edge supervisor folds the spool into these rows (sip/call_log.py),
# so a record survives the API being down while the call is up. No foreign key: records outlive
# their connection, as Telnyx's detail records do.
call_record = sa.Table(
    "call_record",
    metadata,
    sa.Column("id", Id, primary_key=True),  # also the call's call_leg_id
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("connection_id", Id, nullable=True),
    sa.Column("call_session_id", Id, nullable=False),
    sa.Column("call_control_id", sa.String(64), nullable=False),
    sa.Column("sip_call_id", sa.String(255), nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),  # outbound | inbound
    sa.Column("cli", sa.String(64), nullable=False),  # the caller's number: +E.164 when it is one
    sa.Column("cld", sa.String(64), nullable=False),  # the called number: +E.164 when it is one
    sa.Column("destination_country", sa.String(3), nullable=True),  # ISO 3166 alpha-2
    sa.Column("state", sa.String(16), nullable=False),  # ringing | answered | finished
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("answered_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("call_sec", sa.Integer, nullable=True),
    sa.Column("billed_sec", sa.Integer, nullable=True),
    sa.Column("rate", sa.String(32), nullable=True),  # USD per minute, from the deck
    sa.Column("cost", sa.String(32), nullable=True),  # USD
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("sip_status", sa.Integer, nullable=True),  # the final status the caller got
    sa.Column("sip_reason", sa.String(255), nullable=True),
    sa.Column("d_code", sa.String(8), nullable=True),  # Telnyx's refusal code, e.g. D13, TM1
    sa.Column("hangup_cause", sa.String(32), nullable=True),
    sa.Column("hangup_source", sa.String(16), nullable=True),  # caller | callee | unknown
    # An inbound call's routes in the order tried, with what each answered (JSON: [{"route":
    # "203.0.113.5:5060", "status": 503}, ...]); the last answered or gave the final status.
    sa.Column("routes_tried", sa.Text, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_call_record_user_id_started_at_id", "user_id", "started_at", "id"),
    sa.Index("ix_call_record_connection_id_state", "connection_id", "state"),
)

# Each connection's rated spend per UTC day, in nano-USD (exact integer sums), added to when a call
# record is finished; the edge compares it with the profile's daily_spend_limit (D39).
connection_spend = sa.Table(
    "connection_spend",
    metadata,
    sa.Column("connection_id", Id, primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD, UTC
    sa.Column("cost_nanos", sa.BigInteger, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
)

# The server's clock offset from real time, in ms: 0 in production; moved by the test control API
# (`PUT /_trunkline/clock`) so that tests can cross a calling window or UTC midnight without waiting.
# One row (id 1) or none; the edge reads it with every call (view kam_connection).
clock_offset = sa.Table(
    "clock_offset",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("offset_ms", sa.BigInteger, nullable=False),
)

# Phone numbers the operator keeps (`trunkline numbers add`), each belonging to one account and
# assigned to at most one of its connections (Telnyx's phone-number resource, the subset in
# docs/numbers.md). Deleting a connection unassigns its numbers. The SIP edge routes inbound calls
# by `phone_number` (view kam_number).
phone_number = sa.Table(
    "phone_number",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("phone_number", sa.String(16), nullable=False, unique=True),  # +E.164
    sa.Column(
        "connection_id", Id, sa.ForeignKey("connection.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    sa.Column("document", sa.Text, nullable=False),
    *_stamps(),
    sa.Index("ix_phone_number_user_id_created_at_id", "user_id", "created_at", "id"),
)

# The webhook outbox (docs/webhooks.md): one row per event to deliver, written in the transaction of
# the call transition it announces, so an event exists exactly when its transition does. `seq` orders
# one call's events (start, answer, hangup, cost); a worker delivers an event only once the earlier
# ones of its call are settled. A worker owns a row while `lease_until` is in the future.
webhook_event = sa.Table(
    "webhook_event",
    metadata,
    sa.Column("id", Id, primary_key=True),  # the event id: the same on every attempt
    sa.Column("user_id", UserId, nullable=False),
    sa.Column("connection_id", Id, nullable=True),
    sa.Column("call_leg_id", sa.String(64), nullable=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("api_version", sa.String(2), nullable=False),  # "1" | "2"
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("failover_url", sa.Text, nullable=True),
    sa.Column("timeout_secs", sa.Integer, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),  # the body without `meta` (JSON)
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),  # made so far, across both URLs
    sa.Column("next_url", sa.Text, nullable=False),  # where the next attempt goes: url or failover_url
    sa.Column("round_attempts", sa.Integer, nullable=False),  # attempts made to next_url in a row
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("delivered_at", Timestamp, nullable=True),
    sa.Column("delivered_to", sa.Text, nullable=True),
    sa.Column("last_error", sa.String(255), nullable=True),
    *_stamps(),
    sa.Index("ix_webhook_event_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_webhook_event_call_leg_id_seq", "call_leg_id", "seq"),
    sa.Index("ix_webhook_event_user_id_created_at", "user_id", "created_at"),
)

# Every delivery attempt of an outbox event, for `trunkline webhooks list` and for debugging a receiver.
webhook_attempt = sa.Table(
    "webhook_attempt",
    metadata,
    sa.Column("event_id", Id, sa.ForeignKey("webhook_event.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),  # meta.attempt: 1, 2, 3, ... across both URLs
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("attempted_at", Timestamp, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),  # null: no HTTP response
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.String(255), nullable=True),
)

# The server's Ed25519 webhook signing key pair, one row (id 1), created on first start by whichever
# API instance gets there first; base64 of the raw 32-byte keys. The private key is read only by the
# signer: no API, CLI output, state export or log carries it.
webhook_key = sa.Table(
    "webhook_key",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("private_key", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)
