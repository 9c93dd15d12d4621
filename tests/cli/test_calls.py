"""`trunkline calls list`: newest first, a table or JSON lines, read-only.

The console script itself runs where it matters (the output a user pipes, the unmigrated database);
the other cases invoke the same Typer app in process, which skips seconds of interpreter start each.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.cli.test_keys import trunkline
from tests.cli.test_read_commands import sqlite_path
from tests.conformance.test_detail_records import call, ringing, seed_calls
from tests.conftest import Account
from tests.services import postgres_database
from trunkline.cli import app
from trunkline.cli._schema import current_revisions
from trunkline.resources.detail_records import stamp

T0 = dt.datetime(2029, 2, 3, 10, 0, tzinfo=dt.UTC)


def connection_id() -> str:
    """A connection id no other test's records carry: scopes a listing across accounts."""
    return str(4_100_000_000_000_000_000 + uuid.uuid4().int % 10**15)


def minutes(n: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def calls_list(*args: str, database_url: str) -> Result:
    """`trunkline calls list ARGS` in process."""
    return CliRunner().invoke(app, ["calls", "list", *args, "--database-url", database_url])


def flat(text: str) -> str:
    """An error message as one line, without the frame Typer draws around it."""
    return " ".join(text.replace("\u2502", " ").split())


def test_json_lines_are_the_apis_detail_records_newest_first(account: Account, database_url: str) -> None:
    pbx = account.client.ip_connections.create(connection_name="cli pbx").data
    rows = seed_calls(
        database_url,
        call(account.user_id, minutes(0), connection_id=pbx.id),
        ringing(account.user_id, minutes(2)),
        call(account.user_id, minutes(1), answered_at=None, d_code="D13", rate=None, cost=None),
        call(
            account.user_id,
            minutes(3),
            direction="inbound",
            routes_tried='[{"route":"203.0.113.5:5060","status":503},{"route":"203.0.113.6:5060","status":200}]',
        ),
    )
    done = trunkline("calls", "list", "--user-id", account.user_id, "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    api = account.http.get("/detail_records", params={"filter[record_type]": "sip-trunking"}).json()["data"]
    # The API's detail records, plus the routes an inbound call tried (Telnyx's records have no field).
    assert [{k: v for k, v in p.items() if k != "routes_tried"} for p in printed] == api
    inbound, *others = printed
    assert inbound["routes_tried"] == [
        {"route": "203.0.113.5:5060", "status": 503},
        {"route": "203.0.113.6:5060", "status": 200},
    ]
    assert all(p["routes_tried"] is None for p in others)
    printed = others
    assert [r["id"] for r in printed] == [rows[1]["id"], rows[2]["id"], rows[0]["id"]]
    assert printed[2]["connection_name"] == "cli pbx"


def test_the_table_is_aligned_under_a_heading(account: Account, database_url: str) -> None:
    seed_calls(
        database_url,
        call(account.user_id, minutes(0), cost="0.0200"),
        ringing(account.user_id, minutes(1)),
        call(account.user_id, minutes(2), answered_at=None, d_code="D35", sip_status=403, cost=None),
    )
    done = calls_list("--user-id", account.user_id, database_url=database_url)
    assert done.exit_code == 0, done.output
    heading, *lines = done.stdout.splitlines()
    assert heading.split() == [
        "STARTED",
        "ACCOUNT",
        "CONNECTION",
        "DIR",
        "FROM",
        "TO",
        "STATUS",
        "SEC",
        "COST",
        "SIP",
        "ROUTES",
        "ID",
    ]
    assert len(lines) == 3
    status_at = heading.index("STATUS")
    assert [line[status_at:].split()[0] for line in lines] == ["rejected", "in-progress", "completed"]
    assert lines[0].startswith(stamp(minutes(2)))
    assert "403 D35" in lines[0]
    assert "0.0200 USD" in lines[2]
    ringing_cells = lines[1].split()
    assert ringing_cells[ringing_cells.index("in-progress") + 1 :][:3] == ["-", "-", "-"]  # SEC, COST, SIP


def test_filters_by_account_connection_and_start(account: Account, new_account, database_url: str) -> None:  # type: ignore[no-untyped-def]
    other = new_account()
    trunk = connection_id()
    mine = seed_calls(
        database_url,
        call(account.user_id, minutes(0), connection_id=trunk),
        call(account.user_id, minutes(5), connection_id=trunk),
        call(account.user_id, minutes(6)),
    )
    theirs = seed_calls(database_url, call(other.user_id, minutes(3), connection_id=trunk))[0]

    def ids(*args: str) -> list[str]:
        done = calls_list("--json", *args, database_url=database_url)
        assert done.exit_code == 0, done.output
        return [json.loads(line)["id"] for line in done.stdout.splitlines()]

    # Without --user-id: every account's calls (an operator's view).
    assert ids("--connection", trunk) == [mine[1]["id"], theirs["id"], mine[0]["id"]]
    assert ids("--connection", trunk, "--user-id", other.user_id) == [theirs["id"]]
    assert ids("--user-id", account.user_id, "--since", stamp(minutes(5))) == [mine[2]["id"], mine[1]["id"]]
    # An offset, and a bare date.
    assert ids("--user-id", account.user_id, "--since", "2029-02-03T11:04:00+01:00") == [
        mine[2]["id"],
        mine[1]["id"],
    ]
    assert len(ids("--user-id", account.user_id, "--since", "2029-02-03")) == 3
    assert ids("--user-id", account.user_id, "--limit", "2") == [mine[2]["id"], mine[1]["id"]]
    assert ids("--user-id", account.user_id, "--since", "2029-02-04") == []


def test_nothing_to_list_says_so_and_succeeds(database_url: str) -> None:
    done = trunkline(
        "calls", "list", "--user-id", f"nobody-{uuid.uuid4().hex[:8]}", database_url=database_url
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "no call records match" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "ISO-8601"),
        (["--since", "0001-01-01T00:00:00+05:00"], "outside the years"),
        (["--limit", "0"], "--limit"),
        (["--limit", "many"], "--limit"),
    ],
)
def test_bad_options_are_refused_clearly(database_url: str, args: list[str], message: str) -> None:
    done = calls_list(*args, database_url=database_url)
    assert done.exit_code == 2, done.output
    assert message in flat(done.stderr)
    assert done.exception is None or isinstance(done.exception, SystemExit)


@pytest.mark.parametrize("option", ["--user-id", "--connection", "--since"])
def test_a_nul_in_an_option_is_refused_before_any_query(database_url: str, option: str) -> None:
    # In process: no operating system passes a NUL in a command's arguments.
    done = calls_list(option, "a\x00b", database_url=database_url)
    assert done.exit_code == 2, done.output
    assert "NUL" in flat(done.stderr)


@pytest.fixture
def blank_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database that was never migrated: no file on SQLite, an empty database on PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'never-made.db'}"
        return
    with postgres_database() as url:
        yield url


def test_on_an_unmigrated_database_it_says_to_upgrade_and_changes_nothing(blank_database_url: str) -> None:
    done = trunkline("calls", "list", database_url=blank_database_url)
    assert done.returncode == 1, done.stdout
    assert "trunkline db upgrade" in done.stderr and "Traceback" not in done.stderr
    path = sqlite_path(blank_database_url)
    if path is not None:
        assert not path.exists()
    else:
        assert current_revisions(blank_database_url) == set()


def test_on_a_schema_without_call_records_it_refuses_and_leaves_it(blank_database_url: str) -> None:
    upgraded = trunkline("db", "upgrade", "--revision", "0005", database_url=blank_database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    done = trunkline("calls", "list", "--json", database_url=blank_database_url)
    assert done.returncode == 1, done.stdout
    assert "revision 0005" in done.stderr and "trunkline db upgrade" in done.stderr
    assert current_revisions(blank_database_url) == {"0005"}
