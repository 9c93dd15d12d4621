"""`trunkline numbers`, run as a user runs it: the installed console script, on both engines."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from tests.cli.test_keys import trunkline
from tests.cli.test_read_commands import blank_database_url, sqlite_path  # noqa: F401 (a fixture)
from tests.conformance.test_phone_numbers import fresh_number
from tests.conftest import Account
from trunkline.resources import phone_numbers
from trunkline.store.db import Database


def _user() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def _held(database_url: str, user_id: str) -> list[str]:
    """The account's numbers, read from the store (cheaper than running `numbers list`)."""

    async def go() -> list[str]:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                return [number["phone_number"] for _, number in await phone_numbers.inventory(conn, user_id)]
        finally:
            await db.dispose()

    return asyncio.run(go())


def _listing(database_url: str, user_id: str) -> list[list[str]]:
    done = trunkline("numbers", "list", "--user-id", user_id, database_url=database_url)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def test_add_then_the_account_sees_the_numbers_through_the_api(database_url: str, account: Account) -> None:
    us, gb = fresh_number(), fresh_number("+44207", length=13, country="GB")
    done = trunkline("numbers", "add", us, gb, "--user-id", account.user_id, database_url=database_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"added {us}", f"added {gb}"]
    assert lines[0].endswith("US local") and lines[1].endswith("GB local")
    assert f"2 numbers added to user {account.user_id}" in done.stderr
    listed = account.client.phone_numbers.list().data
    assert {n.phone_number for n in listed} == {us, gb}
    ids = {line.split("\t")[1].removeprefix("id ") for line in lines}
    assert {n.id for n in listed} == ids


def test_list_shows_the_inventory_and_json_lines(database_url: str, account: Account) -> None:
    number = fresh_number()
    trunkline("numbers", "add", number, "--user-id", account.user_id, database_url=database_url)
    api = account.client.phone_numbers.list().data[0]
    pbx = account.client.ip_connections.create(connection_name="pbx").data
    account.client.phone_numbers.update(api.id, connection_id=str(pbx.id), tags=["a", "b"])
    assert _listing(database_url, account.user_id) == [[number, account.user_id, str(pbx.id), api.id, "a,b"]]
    done = trunkline("numbers", "list", "--user-id", account.user_id, "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert record["user_id"] == account.user_id
    assert {k: v for k, v in record.items() if k != "user_id"} == account.http.get(
        f"/phone_numbers/{api.id}"
    ).json()["data"]


def test_list_of_an_account_without_numbers_says_so(database_url: str) -> None:
    user = _user()
    done = trunkline("numbers", "list", "--user-id", user, database_url=database_url)
    assert (done.returncode, done.stdout) == (0, "")
    assert f"no numbers in user {user}'s inventory" in done.stderr


def test_list_without_user_id_lists_every_account(database_url: str) -> None:
    a, b = _user(), _user()
    na, nb = fresh_number(), fresh_number()
    trunkline("numbers", "add", na, "--user-id", a, database_url=database_url)
    trunkline("numbers", "add", nb, "--user-id", b, database_url=database_url)
    done = trunkline("numbers", "list", database_url=database_url)
    rows = {tuple(line.split("\t")[:2]) for line in done.stdout.splitlines()}
    assert {(na, a), (nb, b)} <= rows


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("13125550100", "no leading '+'"),
        ("+1 312 555 0100", "not in E.164"),
        ("+1-312-555-0100", "not in E.164"),
        ("+15551234567", "not a valid phone number"),
        ("+4402071838750", "did you mean +442071838750"),
        ("+80012345678", "non-geographic"),
        ("+9991234567", "not a phone number"),
        ("+", "not in E.164"),
    ],
)
def test_add_refuses_a_bad_number_by_name_and_adds_nothing(database_url: str, number: str, says: str) -> None:
    user, good = _user(), fresh_number()
    done = trunkline("numbers", "add", good, number, "--user-id", user, database_url=database_url)
    assert done.returncode == 2, done.stdout
    assert number in done.stderr and says in done.stderr, done.stderr
    assert "Nothing was added" in done.stderr
    assert "Traceback" not in done.stderr
    assert _held(database_url, user) == []


def test_add_reports_every_bad_number_at_once(database_url: str) -> None:
    done = trunkline("numbers", "add", "123", "+15551234567", "--user-id", _user(), database_url=database_url)
    assert done.returncode == 2
    assert "'123'" in done.stderr and "+15551234567" in done.stderr


def test_a_number_given_twice_is_refused(database_url: str) -> None:
    user, number = _user(), fresh_number()
    done = trunkline("numbers", "add", number, number, "--user-id", user, database_url=database_url)
    assert done.returncode == 2 and "given twice" in done.stderr
    assert _held(database_url, user) == []


def test_a_number_another_account_holds_is_refused_without_naming_it(database_url: str) -> None:
    holder, user = _user(), _user()
    taken, free = fresh_number(), fresh_number()
    assert trunkline("numbers", "add", taken, "--user-id", holder, database_url=database_url).returncode == 0
    done = trunkline("numbers", "add", free, taken, "--user-id", user, database_url=database_url)
    assert done.returncode == 1, done.stdout
    assert f"{taken} is already in another account's inventory" in done.stderr
    assert holder not in done.stderr + done.stdout
    assert "Nothing was changed" in done.stderr
    assert _held(database_url, user) == []  # all or none: the free number was not added either
    assert _held(database_url, holder) == [taken]


def test_a_number_the_account_holds_already_is_refused(database_url: str) -> None:
    user, number = _user(), fresh_number()
    trunkline("numbers", "add", number, "--user-id", user, database_url=database_url)
    done = trunkline("numbers", "add", number, "--user-id", user, database_url=database_url)
    assert done.returncode == 1
    assert f"{number} is already in user {user}'s inventory" in done.stderr


@pytest.mark.parametrize("user_id", ["", "   ", "u" * 65])
def test_add_refuses_a_bad_user_id(database_url: str, user_id: str) -> None:
    done = trunkline("numbers", "add", fresh_number(), "--user-id", user_id, database_url=database_url)
    assert done.returncode == 2 and "--user-id" in done.stderr


def test_add_needs_a_user_id_and_a_number(database_url: str) -> None:
    assert trunkline("numbers", "add", fresh_number(), database_url=database_url).returncode == 2
    assert trunkline("numbers", "add", "--user-id", _user(), database_url=database_url).returncode == 2


def test_remove_takes_numbers_out_of_the_inventory_and_the_api(database_url: str, account: Account) -> None:
    a, b = fresh_number(), fresh_number()
    trunkline("numbers", "add", a, b, "--user-id", account.user_id, database_url=database_url)
    gone = next(n for n in account.client.phone_numbers.list().data if n.phone_number == a)
    done = trunkline("numbers", "remove", a, database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"removed {a}\tuser {account.user_id}\tid {gone.id}"]
    assert account.http.get(f"/phone_numbers/{gone.id}").status_code == 404
    assert _held(database_url, account.user_id) == [b]


def test_remove_is_all_or_none(database_url: str) -> None:
    user, held, unknown = _user(), fresh_number(), fresh_number()
    trunkline("numbers", "add", held, "--user-id", user, database_url=database_url)
    done = trunkline("numbers", "remove", held, unknown, database_url=database_url)
    assert done.returncode == 1
    assert f"{unknown} is not in the inventory" in done.stderr and "Nothing was changed" in done.stderr
    assert _held(database_url, user) == [held]


def test_remove_with_user_id_only_removes_that_accounts_numbers(database_url: str) -> None:
    holder, other, number = _user(), _user(), fresh_number()
    trunkline("numbers", "add", number, "--user-id", holder, database_url=database_url)
    done = trunkline("numbers", "remove", number, "--user-id", other, database_url=database_url)
    assert done.returncode == 1
    assert f"{number} is not in user {other}'s inventory" in done.stderr
    assert holder not in done.stderr
    done = trunkline("numbers", "remove", number, "--user-id", holder, database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert _held(database_url, holder) == []


def test_remove_refuses_a_malformed_number(database_url: str) -> None:
    done = trunkline("numbers", "remove", "3125550100", database_url=database_url)
    assert done.returncode == 2 and "no leading '+'" in done.stderr and "Nothing was removed" in done.stderr


def test_list_never_migrates(blank_database_url: str) -> None:  # noqa: F811 (the fixture)
    done = trunkline("numbers", "list", database_url=blank_database_url)
    assert done.returncode == 1
    assert "trunkline db upgrade" in done.stderr and "Traceback" not in done.stderr
    path: Path | None = sqlite_path(blank_database_url)
    if path is not None:
        assert not path.exists()


def test_add_migrates_a_new_database(blank_database_url: str) -> None:  # noqa: F811 (the fixture)
    user, number = _user(), fresh_number()
    done = trunkline("numbers", "add", number, "--user-id", user, database_url=blank_database_url)
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in _listing(blank_database_url, user)] == [number]
