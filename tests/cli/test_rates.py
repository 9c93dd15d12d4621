"""`trunkline rates`: importing, clearing, listing and looking up the server's rate deck.

The deck is the server's, not an account's, so these tests keep a database of their own (one per
engine, for this module) rather than share the session's, where a deck would turn rate rules on under
the SIP tests; each test starts without a deck.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from tests.conftest import migrated_database
from tests.services import postgres_database
from trunkline.cli import app
from trunkline.cli._schema import current_revisions
from trunkline.store import rates
from trunkline.store.db import Database

UK = (
    "prefix,rate,description\n"
    "44,0.0100,United Kingdom\n"
    "4420,0.0120,United Kingdom London\n"
    "447,0.0350,United Kingdom Mobile\n"
    "1,0.0045,\n"
)
RULES_OFF = "no rate deck loaded: rate rules (max_destination_rate, TM1) are off"


@pytest.fixture(scope="module")
def module_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(backend, tmp_path_factory) as url:
        yield url


async def _run(url: str, sql: str) -> list[tuple[object, ...]]:
    db = Database(url)
    try:
        async with db.transaction(write=True) as conn:
            result = await conn.execute(sa.text(sql))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await db.dispose()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    return asyncio.run(_run(url, sql))


@pytest.fixture
def url(module_url: str) -> str:
    """The module's database, without a deck."""
    query(module_url, "DELETE FROM rate")
    query(module_url, "DELETE FROM rate_deck")
    return module_url


def rates_cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["rates", *args, "--database-url", url])


def write(tmp_path: Path, text: str | bytes, name: str = "rates.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def deck(url: str) -> list[tuple[object, ...]]:
    return query(url, "SELECT prefix, rate, description FROM rate ORDER BY prefix")


def import_uk(url: str, tmp_path: Path) -> None:
    done = rates_cli(url, "import", str(write(tmp_path, UK, "uk.csv")))
    assert done.exit_code == 0, done.output


# ----------------------------------------------------------------------------------------------------
# import


def test_import_loads_the_deck_and_says_what_it_read(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, UK)
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        f"imported 4 rates from {path} (longest prefix 4 digits); no deck was loaded before\n"
    )
    assert deck(url) == [
        ("1", "0.0045", None),
        ("44", "0.0100", "United Kingdom"),
        ("4420", "0.0120", "United Kingdom London"),
        ("447", "0.0350", "United Kingdom Mobile"),
    ]
    [(deck_id, count, source, imported_at)] = query(
        url, "SELECT id, rates, source, imported_at FROM rate_deck"
    )
    assert (deck_id, count, source) == (1, 4, "rates.csv")
    assert isinstance(imported_at, str) and imported_at.endswith("Z") and len(imported_at) == 24
    # What the SIP edge reads (migration 0006's view).
    assert query(url, "SELECT prefix, rate FROM kam_rate ORDER BY prefix") == [
        ("1", "0.0045"),
        ("44", "0.0100"),
        ("4420", "0.0120"),
        ("447", "0.0350"),
    ]


def test_a_new_import_replaces_the_whole_deck_and_counts_the_old_one(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    path = write(tmp_path, "prefix,rate\n33,0.02\n", "fr.csv")
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 0, done.output
    assert (
        done.stdout
        == f"imported 1 rate from {path} (longest prefix 2 digits); the previous deck had 4 rates\n"
    )
    assert deck(url) == [("33", "0.02", None)]
    assert query(url, "SELECT rates, source FROM rate_deck") == [(1, "fr.csv")]


def test_rates_are_stored_as_normalised_text(url: str, tmp_path: Path) -> None:
    text = b'\xef\xbb\xbf PREFIX ,Rate,Description\r\n44, 00.0120 ," UK "\r\n33,.5,\r\n34,7.,\r\n'
    done = rates_cli(url, "import", str(write(tmp_path, text)))
    assert done.exit_code == 0, done.output
    assert deck(url) == [("33", "0.5", None), ("34", "7", None), ("44", "0.0120", "UK")]


def test_bad_lines_are_all_reported_and_nothing_changes(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    before = query(url, "SELECT rates, source, imported_at FROM rate_deck")
    text = (
        "prefix,rate,description\n"
        "33,0.02,France\n"
        "34,-1,Spain\n"
        "+49,0.03,Germany\n"
        "33,0.03,France again\n"
        "39,0.04,Italy,extra\n"
        "020,0.01,London\n"
        "41,0.00000000001,Switzerland\n"
    )
    path = write(tmp_path, text)
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {path} line 3: rate '-1' is not a non-negative decimal (USD per minute, e.g. 0.0045)",
        f"error: {path} line 4: prefix '+49' starts with '+': write the digits alone, e.g. '49'",
        f"error: {path} line 5: prefix '33' is on line 2 already: keep one rate per prefix",
        f"error: {path} line 6: 4 fields, but the header names 3 columns: put a description that contains a"
        " comma in double quotes, and write a rate with a point (0.0045), not a comma",
        f"error: {path} line 7: prefix '020' starts with 0: write it in E.164, country code first (no country"
        " code starts with 0), e.g. 4420 rather than 020 or 004420",
        f"error: {path} line 8: rate '0.00000000001' has 11 decimal places: at most 10 (USD per minute, e.g."
        " 0.0045)",
        f"error: {path}: 6 bad lines, so nothing was imported and the deck in use is unchanged; correct the"
        " file and import it again.",
    ]
    assert [row[0] for row in deck(url)] == ["1", "44", "4420", "447"]
    assert query(url, "SELECT rates, source, imported_at FROM rate_deck") == before


def test_at_most_twenty_bad_lines_are_reported(url: str, tmp_path: Path) -> None:
    text = "prefix,rate\n" + "".join(f"{n},x\n" for n in range(100, 130))
    path = write(tmp_path, text)
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 21
    assert (
        lines[0]
        == f"error: {path} line 2: rate 'x' is not a non-negative decimal (USD per minute, e.g. 0.0045)"
    )
    assert lines[19].startswith(f"error: {path} line 21: ")
    assert lines[20] == (
        f"error: {path}: 20 bad lines (the first 20; there may be more), so nothing was imported and the deck"
        " in use is unchanged; correct the file and import it again."
    )
    assert deck(url) == []


def test_a_prefix_repeated_batches_apart_names_both_lines(url: str, tmp_path: Path) -> None:
    count = rates.BATCH * 2 + 10
    rows = [f"{10_000_000 + n},0.01" for n in range(count)]
    rows.append(rows[3])  # line 5 of the file, repeated on the last line
    path = write(tmp_path, "prefix,rate\n" + "\n".join(rows) + "\n")
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    assert done.stderr.splitlines()[0] == (
        f"error: {path} line {count + 2}: prefix '10000003' is on line 5 already: keep one rate per prefix"
    )
    assert deck(url) == []


def test_a_deck_of_several_batches_imports_whole(url: str, tmp_path: Path) -> None:
    count = rates.BATCH * 2 + 1
    rows = "".join(f"{10_000_000 + n},0.{n:04d},place {n}\n" for n in range(count))
    path = write(tmp_path, "prefix,rate,description\n" + rows)
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"imported {count:,} rates from {path} (longest prefix 8 digits)")
    assert query(url, "SELECT COUNT(*), MIN(prefix), MAX(prefix) FROM rate") == [
        (count, "10000000", str(10_000_000 + count - 1))
    ]
    assert query(url, "SELECT rate, description FROM rate WHERE prefix = '10009999'") == [
        ("0.9999", "place 9999")
    ]


def test_a_header_alone_is_refused_and_points_to_clear(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    path = write(tmp_path, "prefix,rate,description\n")
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    assert done.stderr == (
        f"error: {path}: there are no rates below the header: a deck needs at least one. To turn rate rules"
        " off, run `trunkline rates clear`. Nothing was changed.\n"
    )
    assert len(deck(url)) == 4


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            b"",
            1,
            "the file is empty: its first line must be the header prefix,rate,description"
            " (description optional)",
        ),
        (
            b"prefix;rate\n44;0.01\n",
            1,
            "the first line must be the header prefix,rate,description (description optional);"
            " 'prefix;rate' is not one of these columns",
        ),
        (
            b"prefix,rate,description\n33,0.02,Fran\xe7e\n",
            2,
            "this line is not UTF-8 text (byte 0xe7 at position 13): save the file as UTF-8 (in a"
            " spreadsheet: CSV UTF-8) and import it again",
        ),
    ],
    ids=["empty", "semicolons", "latin-1"],
)
def test_a_file_that_cannot_be_read_as_a_deck_says_why(
    url: str, tmp_path: Path, text: bytes, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    assert done.stderr.splitlines()[0] == f"error: {path} line {line}: {message}"
    assert deck(url) == []


def test_a_missing_file_is_an_error(url: str, tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    done = rates_cli(url, "import", str(path))
    assert done.exit_code == 2
    assert done.stderr == f"error: cannot read {path}: No such file or directory\n"


# ----------------------------------------------------------------------------------------------------
# clear, list, lookup


def test_clear_turns_rate_rules_off(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    done = rates_cli(url, "clear")
    assert done.exit_code == 0, done.output
    assert done.stdout == "removed the rate deck (4 rates): rate rules (max_destination_rate, TM1) are off\n"
    assert deck(url) == [] and query(url, "SELECT * FROM rate_deck") == []
    again = rates_cli(url, "clear")
    assert again.exit_code == 0
    assert again.stdout == "no rate deck was loaded: rate rules (max_destination_rate, TM1) are off\n"


def test_list_without_a_deck_says_rate_rules_are_off(url: str) -> None:
    done = rates_cli(url, "list")
    assert done.exit_code == 0
    assert done.stdout == ""
    assert done.stderr == RULES_OFF + "\n"


def test_list_prints_the_deck_in_prefix_order(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    done = rates_cli(url, "list")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "1\t0.0045\t",
        "44\t0.0100\tUnited Kingdom",
        "4420\t0.0120\tUnited Kingdom London",
        "447\t0.0350\tUnited Kingdom Mobile",
    ]
    [imported_at] = query(url, "SELECT imported_at FROM rate_deck")[0]
    assert done.stderr == f"rate deck: 4 rates from uk.csv, imported {imported_at}\n"


def test_list_json_prefix_and_limit(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    done = rates_cli(url, "list", "--json", "--prefix", "44")
    assert done.exit_code == 0, done.output
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"prefix": "44", "rate": "0.0100", "description": "United Kingdom"},
        {"prefix": "4420", "rate": "0.0120", "description": "United Kingdom London"},
        {"prefix": "447", "rate": "0.0350", "description": "United Kingdom Mobile"},
    ]
    limited = rates_cli(url, "list", "--json", "--limit", "2")
    assert [json.loads(line)["prefix"] for line in limited.stdout.splitlines()] == ["1", "44"]
    assert rates_cli(url, "list", "--prefix", "+442").stdout.splitlines() == [
        "4420\t0.0120\tUnited Kingdom London"
    ]
    none = rates_cli(url, "list", "--prefix", "9")
    assert none.exit_code == 0 and none.stdout == ""
    assert none.stderr.splitlines()[-1] == "no rate in the deck has a prefix starting with 9"
    bad = rates_cli(url, "list", "--prefix", "4x")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: --prefix: prefix '4x' is not digits")


def test_list_pages_through_a_deck_longer_than_a_page(url: str, tmp_path: Path) -> None:
    count = rates.BATCH + 7
    rows = "".join(f"{100_000 + n},0.01\n" for n in range(count))
    rates_cli(url, "import", str(write(tmp_path, "prefix,rate\n" + rows)))
    done = rates_cli(url, "list")
    assert done.exit_code == 0, done.output
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == [
        str(100_000 + n) for n in range(count)
    ]
    nines = rates_cli(url, "list", "--prefix", "1049")  # a range ending past the 9s: up to 105
    assert [line.split("\t")[0] for line in nines.stdout.splitlines()] == [
        str(n) for n in range(104_900, 105_000)
    ]


def test_lookup_finds_the_longest_matching_prefix(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    london = rates_cli(url, "lookup", "+442071838750")
    assert london.exit_code == 0, london.output
    assert london.stdout == "+442071838750: prefix 4420, 0.0120 USD/min (United Kingdom London)\n"
    mobile = rates_cli(url, "lookup", "447700900123")
    assert mobile.stdout == "+447700900123: prefix 447, 0.0350 USD/min (United Kingdom Mobile)\n"
    us = rates_cli(url, "lookup", "+12125550100")
    assert us.stdout == "+12125550100: prefix 1, 0.0045 USD/min\n"


def test_lookup_without_a_match_says_the_call_is_refused_with_tm1(url: str, tmp_path: Path) -> None:
    import_uk(url, tmp_path)
    done = rates_cli(url, "lookup", "+33142278186")
    assert done.exit_code == 1
    assert done.stdout == "no rate for +33142278186: calls to it are refused with 403 No Rates Found TM1\n"


def test_lookup_without_a_deck_says_rate_rules_are_off(url: str) -> None:
    done = rates_cli(url, "lookup", "+33142278186")
    assert done.exit_code == 1
    assert done.stdout == f"{RULES_OFF}, so calls to +33142278186 are not rated\n"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        (
            "not-a-number",
            "'not-a-number' is not a phone number: give it as +E.164 or as digits, e.g. +442071838750",
        ),
        (
            "02071838750",
            "'02071838750' starts with 0: give it in E.164, country code first, e.g. +442071838750",
        ),
        ("+1234567890123456", "'+1234567890123456' has 16 digits: an E.164 number has at most 15"),
    ],
)
def test_lookup_of_a_bad_number_exits_2(url: str, number: str, message: str) -> None:
    done = rates_cli(url, "lookup", number)
    assert done.exit_code == 2
    assert done.stderr == f"error: {message}\n"


# ----------------------------------------------------------------------------------------------------
# Reads never migrate


@pytest.fixture
def blank_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'never-made.db'}"
        return
    with postgres_database() as made:
        yield made


@pytest.mark.parametrize("command", [["list"], ["lookup", "+44"]], ids=["list", "lookup"])
def test_reads_on_an_unmigrated_database_say_to_upgrade_and_change_nothing(
    blank_url: str, tmp_path: Path, command: list[str]
) -> None:
    done = rates_cli(blank_url, *command)
    assert done.exit_code == 1
    assert "trunkline db upgrade" in done.stderr
    if blank_url.startswith("sqlite"):
        assert not (tmp_path / "never-made.db").exists()
    else:
        assert current_revisions(blank_url) == set()


def test_import_migrates_a_new_database_as_every_write_does(blank_url: str, tmp_path: Path) -> None:
    done = rates_cli(blank_url, "import", str(write(tmp_path, UK)))
    assert done.exit_code == 0, done.output
    assert rates_cli(blank_url, "lookup", "+44").stdout == "+44: prefix 44, 0.0100 USD/min (United Kingdom)\n"


# ----------------------------------------------------------------------------------------------------
# Readers during an import


_PG_LOCK_HELD = sa.text(
    "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    " WHERE c.relname = 'rate' AND l.mode = 'ShareRowExclusiveLock' AND l.granted"
)


async def _swap_running(db: Database, url: str) -> bool:
    """Whether the deck's swap holds its lock now: PostgreSQL's table lock, SQLite's write lock (in this
    test nothing else writes, and staging takes no lock on the database file)."""
    if db.dialect == "postgresql":
        async with db.transaction() as conn:
            return bool((await conn.execute(_PG_LOCK_HELD)).scalar_one())
    probe = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def test_readers_see_the_old_deck_or_the_new_one_never_a_mix(url: str, tmp_path: Path) -> None:
    old = 20_000
    new = 200_000
    write(
        tmp_path,
        "prefix,rate,description\n" + "".join(f"{10_000 + n},0.01,old\n" for n in range(old)),
        "old.csv",
    )
    rows = "".join(f"{1_000_000 + n},0.02,new\n" for n in range(new))
    path = write(tmp_path, "prefix,rate,description\n" + rows, "new.csv")
    assert rates_cli(url, "import", str(tmp_path / "old.csv")).exit_code == 0
    # One statement: on PostgreSQL outside a write transaction each statement has its own snapshot.
    read = (
        "SELECT (SELECT COUNT(*) FROM rate), (SELECT rates FROM rate_deck WHERE id = 1),"
        " (SELECT MIN(description) FROM rate), (SELECT MAX(description) FROM rate)"
    )
    seen: list[tuple[object, ...]] = []
    during = 0

    async def reader(stop: threading.Event) -> None:
        nonlocal during
        db = Database(url)
        try:
            while not stop.is_set():
                before = await _swap_running(db, url)
                async with db.transaction() as conn:
                    row = tuple((await conn.execute(sa.text(read))).one())
                seen.append(row)
                if before and await _swap_running(db, url):
                    during += 1  # the swap held its lock from before this read to after it
        finally:
            await db.dispose()

    env = {**os.environ, "TRUNKLINE_DATABASE_URL": url}
    importer = subprocess.Popen(
        [sys.executable, "-m", "trunkline", "rates", "import", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(reader(stop)))
    thread.start()
    try:
        out, err = importer.communicate(timeout=300)
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join(timeout=60)
    assert importer.returncode == 0, err
    assert out == (
        f"imported 200,000 rates from {path} (longest prefix 7 digits); the previous deck had 20,000 rates\n"
    )
    assert "new.csv: 100,000 rates read (" in err  # progress of a long import, on stderr
    assert set(seen) <= {(old, old, "old", "old"), (new, new, "new", "new")}, set(seen) - {
        (old, old, "old", "old"),
        (new, new, "new", "new"),
    }
    assert seen[0] == (old, old, "old", "old")
    assert seen[-1] == (new, new, "new", "new")
    assert during >= 3, f"only {during} reads fell inside the swap: the race was not run"
