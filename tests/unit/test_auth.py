"""PlatformAuthenticator on a real JupyterHub database (in-memory sqlite), no hub."""

import argparse
import asyncio
import os
import stat
import time

import pytest
from jupyterhub import orm
from nativeauthenticator.orm import UserInfo
from tornado import web

from spawner.auth import PlatformAuthenticator
from spawner.auth.invites import Invite, token_hash
from spawner.hubctl.__main__ import duration, main, token_lifetime

RULE = "lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"


@pytest.fixture
def auth(tmp_path):
    return PlatformAuthenticator(
        db=orm.new_session_factory("sqlite://")(),
        initial_admin="admin",
        initial_admin_password_file=str(tmp_path / "secrets" / "initial_admin_password"),
        minimum_password_length=10,  # as jupyterhub_config.py sets them
        check_common_password=True,
    )


def add_signup(auth, name: str, password: str, approved: bool = True) -> None:
    hashed = asyncio.run(auth.hash_password(password))
    auth.db.add(UserInfo(username=name, password=hashed, is_authorized=approved))
    auth.db.commit()


def login(auth, name: str, password: str):
    return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))


@pytest.mark.parametrize(
    "raw, normal",
    [("Ada", "ada"), ("ＡＤＡ", "ada"), ("ﬁona", "fiona"), ("a.b-c_d", "a.b-c_d"), ("ZOË", "zoë")],
)
def test_names_are_nfkc_then_lower_cased(auth, raw, normal):
    assert auth.normalize_username(raw) == normal


@pytest.mark.parametrize("name", ["a", "a.b", "a-2eb", "0x", "ada_l", "m" * 32])
def test_names_inside_the_rule_are_valid(auth, name):
    assert auth.validate_username(name) and auth.name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "m" * 33, "zoë", "-a", ".a", "_a", "..", "a b", "a\tb", "a/b", "a,b", "ab\n", "o'neil", "{servername}", "<b>"],
)
def test_names_outside_the_rule_are_refused_with_the_rule(auth, name):
    assert not auth.validate_username(name)
    assert RULE in auth.name_problem(name) and "1 to 32 characters" in auth.name_problem(name)


def test_a_name_not_in_normal_form_is_refused_with_its_normal_form(auth):
    assert auth.name_problem("Ada") == "'Ada' is not in normal form: use 'ada'"
    with pytest.raises(ValueError, match="use 'ada'"):
        asyncio.run(auth.add_user(orm.User(name="Ada")))


def test_a_huge_name_is_echoed_capped(auth):
    assert len(auth.name_problem("x" * 1_000_000)) < 300


def test_the_max_length_is_one_setting(tmp_path):
    auth = PlatformAuthenticator(db=orm.new_session_factory("sqlite://")(), username_max_length=4)
    assert auth.validate_username("abcd") and not auth.validate_username("abcde")
    assert "1 to 4 characters" in auth.name_problem("abcde")


def test_unsupported_native_options_are_refused():
    with pytest.raises(Exception, match="does not support NativeAuthenticator.open_signup"):
        PlatformAuthenticator(db=orm.new_session_factory("sqlite://")(), open_signup=True)


@pytest.mark.parametrize(
    "password, problem",
    [
        ("é" * 37, "at most 72 bytes (UTF-8); this one has 74"),
        ("x" * 73, "at most 72 bytes"),
        ("short", "at least 10 characters"),
        ("password123", "too common"),
        ("x" * 72, None),
    ],
)
def test_password_rules(auth, password, problem):
    found = auth.password_problem(password)
    assert found == problem if problem is None else problem in found


def test_a_password_over_72_bytes_is_a_plain_miss_not_an_error(auth):
    add_signup(auth, "ada", "correct horse battery")
    assert login(auth, "ada", "é" * 40) is None
    assert login(auth, "ada", "correct horse battery") == "ada"


def test_bcrypt_runs_off_the_event_loop(auth):
    hashed = asyncio.run(auth.hash_password("correct horse battery"))

    async def ticks_during_check() -> int:
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        assert await auth.password_matches("correct horse battery", hashed)
        ticker.cancel()
        return ticks

    # one check takes ~0.3 s: on the loop, the ticker would not run at all meanwhile
    assert asyncio.run(ticks_during_check()) >= 5


def test_failed_logins_lock_the_name_out_for_a_while(auth):
    auth.allowed_failed_logins, auth.seconds_before_next_try = 3, 2
    add_signup(auth, "ada", "correct horse battery")
    add_signup(auth, "bob", "correct horse battery")
    assert [login(auth, "ada", "wrong password!") for _ in range(3)] == [None] * 3
    with pytest.raises(web.HTTPError) as locked:
        login(auth, "ada", "correct horse battery")
    assert locked.value.status_code == 429 and "Too many failed logins for ada" in locked.value.log_message
    assert login(auth, "bob", "correct horse battery") == "bob"  # per name
    time.sleep(2.2)
    assert login(auth, "ada", "correct horse battery") == "ada"


def test_the_lockout_is_on_by_default(auth):
    assert auth.allowed_failed_logins == 5 and auth.seconds_before_next_try == 300


def test_a_pending_signup_with_the_right_password_is_told_to_wait(auth):
    add_signup(auth, "ada", "correct horse battery", approved=False)
    with pytest.raises(web.HTTPError, match="not approved by an admin yet"):
        login(auth, "ada", "correct horse battery")
    assert login(auth, "ada", "wrong password!") is None


def test_the_initial_admin_is_created_once_with_a_private_password_file(auth):
    path = auth.initial_admin_password_file
    asyncio.run(auth.add_user(orm.User(name="admin")))
    password = open(path).read().strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(password) >= 20
    assert login(auth, "admin", password) == "admin"

    asyncio.run(auth.add_user(orm.User(name="admin")))  # every hub start
    assert open(path).read().strip() == password

    auth.password_set("admin")  # changed: the file no longer tells the truth
    assert not os.path.exists(path)
    asyncio.run(auth.add_user(orm.User(name="admin")))
    assert not os.path.exists(path)  # never a fresh password for an existing admin


def test_an_invitation_stores_only_a_hash_and_works_once(auth):
    token, invite = auth.mint_invite("ada", 3600)
    assert invite.token_hash == token_hash(token) and token not in invite.token_hash
    assert Invite.find(auth.db, token) is invite and Invite.find(auth.db, "forged") is None

    assert asyncio.run(auth.redeem_invite(invite, "short")) == "A password has at least 10 characters."
    assert asyncio.run(auth.redeem_invite(invite, "correct horse battery")) is None
    assert login(auth, "ada", "correct horse battery") == "ada"
    assert "already used" in asyncio.run(auth.redeem_invite(invite, "another good one"))
    assert login(auth, "ada", "another good one") is None


def test_an_invitation_expires(auth):
    _, invite = auth.mint_invite("ada", 60)
    assert invite.problem() is None
    assert "expired" in invite.problem(now=invite.expires)


def test_a_new_invitation_replaces_the_unused_one_and_a_pending_claim(auth):
    add_signup(auth, "ada", "stranger's password", approved=False)
    first, _ = auth.mint_invite("ada", 3600)
    assert UserInfo.find(auth.db, "ada") is None  # the stranger's claim is gone
    second, invite = auth.mint_invite("ada", 3600)
    assert Invite.find(auth.db, first) is None and Invite.find(auth.db, second) is invite


def test_an_invitation_resets_a_forgotten_password_and_unlocks(auth):
    add_signup(auth, "ada", "old password 123")
    for _ in range(5):
        login(auth, "ada", "wrong password!")
    _, invite = auth.mint_invite("ada", 3600)
    assert asyncio.run(auth.redeem_invite(invite, "new password 456")) is None
    assert login(auth, "ada", "new password 456") == "ada"
    assert login(auth, "ada", "old password 123") is None


def test_removing_a_user_drops_their_invitations(auth):
    token, _ = auth.mint_invite("ada", 3600)
    auth.delete_user(orm.User(name="ada"))
    assert Invite.find(auth.db, token) is None


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)])
def test_hubctl_durations(text, seconds):
    assert duration(text) == seconds == token_lifetime(text)


@pytest.mark.parametrize("text", ["0", "-1", "1w", "", "soon", "1.5h"])
def test_hubctl_refuses_bad_durations(text):
    with pytest.raises(argparse.ArgumentTypeError, match="like 30m, 12h, 7d"):
        duration(text)


def test_hubctl_token_never_expiring_is_explicit():
    assert token_lifetime("never") is None


@pytest.fixture
def hubctl_data(tmp_path, monkeypatch):
    """hubctl's settings as in the hub container: only GPUHUB_DATA_DIR (the
    schema refuses unknown GPUHUB_* variables, e.g. the tests' GPUHUB_TAG)."""
    for name in [name for name in os.environ if name.startswith("GPUHUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GPUHUB_DATA_DIR", str(tmp_path))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hubctl_token").write_text("unused\n")
    return tmp_path / "secrets" / "initial_admin_password"


def test_first_admin_prints_the_kept_password(hubctl_data, capsys):
    hubctl_data.write_text("s3cret-value\n")
    assert main(["first-admin"]) == 0
    assert "log in as 'admin' with password s3cret-value" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_first_admin_never_makes_up_a_password(hubctl_data, capsys, content):
    if content is not None:
        hubctl_data.write_text(content)
    assert main(["first-admin"]) == 0
    out = capsys.readouterr().out
    assert "is unknown" in out and "scripts/hubctl users invite admin" in out and "with password" not in out
