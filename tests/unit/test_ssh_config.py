"""scripts/ssh-config: the ~/.ssh/config block of a user, and refusal of what
would not be carried safely into a Host line, a URL or the ProxyCommand's shell.
The block itself is used for real by tests/ssh."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts/ssh-config"
TOKEN = "0123456789abcdef0123456789abcdef"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30)


def test_block_for_a_user_through_the_tunnel():
    out = run("ada", "--token", TOKEN, "--identity", "~/.ssh/id_gpuhub")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Host gpuhub-ada",
        "    User jovyan",
        f"    ProxyCommand websocat --binary -H='Authorization: token {TOKEN}' asyncstdio: "
        "ws://127.0.0.1:8000/user/ada/sshd/",
        "    ServerAliveInterval 30",
        "    IdentityFile ~/.ssh/id_gpuhub",
        "    IdentitiesOnly yes",
    ]


def test_https_hub_with_a_path_gives_wss():
    out = run("ada", "--token", TOKEN, "--hub", "https://hub.example.org/lab/")
    assert "asyncstdio: wss://hub.example.org/lab/user/ada/sshd/\n" in out.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (["Ada", "--token", TOKEN], "not a username"),
        (["a;id", "--token", TOKEN], "not a username"),
        (["ada\nHost *", "--token", TOKEN], "not a username"),
        (["ada", "--token", "abc' ; id ; '"], "the token"),
        (["ada"], "the token"),  # none given, GPUHUB_TOKEN unset
        (["ada", "--token", TOKEN, "--hub", "http://h;id/"], "--hub"),
        (["ada", "--token", TOKEN, "--hub", "ftp://h"], "--hub"),
        (["ada", "--token", TOKEN, "--identity", "a b"], "--identity"),
    ],
)
def test_hostile_input_is_refused_and_nothing_printed(args, says, monkeypatch):
    monkeypatch.delenv("GPUHUB_TOKEN", raising=False)
    out = run(*args)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith("ERROR: ") and says in out.stderr
