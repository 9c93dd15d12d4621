"""Lock-out recovery: an account whose ranges leave out its own address is freed with the CLI."""

from __future__ import annotations

from tests.conftest import Account
from tests.frontdoor._clients import cli, wait_for
from tests.server import LiveServer


def test_locked_out_account_is_recovered_with_the_cli(
    account: Account, server: LiveServer, database_url: str
) -> None:
    wrong = account.client.access_ip_ranges.create(cidr_block="192.0.2.0/24", description="typo")
    wait_for(lambda: account.http.get("/ips").status_code == 403, timeout=2)
    # Locked out: not even the ranges themselves can be listed or removed through the API.
    assert account.http.get("/access_ip_ranges").status_code == 403
    assert account.http.delete(f"/access_ip_ranges/{wrong.id}").status_code == 403

    listing = cli("access-ranges", "list", "--user-id", account.user_id, database_url=database_url)
    assert listing.exit_code == 0, listing.output
    fields = listing.stdout.strip().split("\t")
    assert fields[:3] == [wrong.id, "192.0.2.0/24", "added"]
    assert fields[4] == "typo"

    done = cli("access-ranges", "remove", "--user-id", account.user_id, wrong.id, database_url=database_url)
    assert done.exit_code == 0, done.output
    assert f"removed {wrong.id} (192.0.2.0/24)" in done.stdout
    # The running server polls for changes (every 2 s by default) and reopens the account.
    waited = wait_for(lambda: account.http.get("/ips").status_code == 200, timeout=5)
    print(f"\nunlocked {waited:.2f} s after the CLI removed the range")
    assert account.client.access_ip_ranges.list().data == []


def test_cli_add_lets_an_operator_allow_a_new_address(account: Account, database_url: str) -> None:
    account.client.access_ip_ranges.create(cidr_block="192.0.2.0/24")
    wait_for(lambda: account.http.get("/ips").status_code == 403, timeout=2)
    done = cli("access-ranges", "add", "--user-id", account.user_id, "127.0.0.1", database_url=database_url)
    assert done.exit_code == 0, done.output
    assert "(127.0.0.1/32)" in done.stdout
    wait_for(lambda: account.http.get("/ips").status_code == 200, timeout=5)
    blocks = sorted(r.cidr_block for r in account.client.access_ip_ranges.list())
    assert blocks == ["127.0.0.1/32", "192.0.2.0/24"]


def test_cli_refuses_unknown_ranges_and_bad_blocks(account: Account, database_url: str) -> None:
    gone = cli("access-ranges", "remove", "--user-id", account.user_id, "42", database_url=database_url)
    assert gone.exit_code == 1
    assert "no access IP range 42" in gone.stderr
    bad = cli("access-ranges", "add", "--user-id", account.user_id, "10.0.0.1/8", database_url=database_url)
    assert bad.exit_code == 1
    assert "10.0.0.0/8" in bad.stderr  # the detail names the network the user probably meant
    empty = cli("access-ranges", "list", "--user-id", account.user_id, database_url=database_url)
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no access IP ranges" in empty.stderr


def test_cli_remove_does_not_touch_another_accounts_range(
    account: Account, new_account, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    other = new_account()
    theirs = other.client.access_ip_ranges.create(cidr_block="127.0.0.0/8")
    done = cli("access-ranges", "remove", "--user-id", account.user_id, theirs.id, database_url=database_url)
    assert done.exit_code == 1
    assert [r.id for r in other.client.access_ip_ranges.list()] == [theirs.id]
