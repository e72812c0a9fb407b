"""SSH into one's own container through the hub, the way README "From your
laptop" says: the SSH tunnel to the hub, a token, scripts/ssh-config's Host
block, then the real ssh/scp client with websocat as ProxyCommand."""

import json
import socket
import subprocess
import time

import pytest
import requests

from tests.deployment import api, hubctl, new_users, user_containers, wait_running, wait_stopped

from .conftest import SSH, start_with_key, user_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def owner(admin_api):
    """A user with a running server and the container key authorized; stopped afterwards."""
    [user] = new_users(admin_api, "ssh", 1)
    yield user
    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user, timeout=120)


@pytest.fixture(scope="module")
def ssh(owner, admin_api, docker_client, keys, tunnel, tmp_path_factory) -> SSH:
    start_with_key(admin_api, docker_client, owner, keys["container"])
    return SSH(
        owner, user_token(admin_api, owner), tunnel.base_url, keys["container"], tmp_path_factory.mktemp("laptop")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_runs_as_the_user_in_the_images_python(ssh):
    # The stand-in's Python is its Jupyter venv; production's named envs are `conda run -n ENV python -c`.
    out = ssh.run("python", "-c", "'import os, sys; print(sys.prefix, os.getuid(), os.getcwd())'").stdout
    assert out.split() == ["/opt/jupyter", "1000", "/home/jovyan"]
    # sshd itself (the session's parent) runs as the user, never root
    uids = ssh.run("awk '/^Uid:/ {print $2, $3}' /proc/$PPID/status").stdout.split()
    assert uids == ["1000", "1000"]


def test_scp_lands_in_the_workspace_and_outlives_a_restart_with_the_same_host_key(
    ssh, owner, admin_api, docker_client, tmp_path
):
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    ssh.scp(data, "rows.csv")
    api(admin_api, "DELETE", f"/users/{owner}/server")
    wait_stopped(admin_api, owner, timeout=120)
    assert api(admin_api, "POST", f"/users/{owner}/server").status_code in (201, 202)
    wait_running(admin_api, owner)
    # known_hosts holds the first start's key and StrictHostKeyChecking=accept-new refuses a changed one
    assert ssh.run("cat", "/home/jovyan/rows.csv").stdout == "a,b\n1,2\n"
    assert ssh.known_hosts.read_text().count("gpuhub-") == 1


def test_local_forward_reaches_a_server_started_in_the_container(ssh, owner, docker_client):
    [container] = user_containers(docker_client, owner)
    serve = "mkdir -p /tmp/tb && echo tensorboard-here > /tmp/tb/index.html && "
    serve += "exec python3 -m http.server 6006 --bind 127.0.0.1 --directory /tmp/tb"
    container.exec_run(["bash", "-c", serve], user="1000", detach=True)
    local = free_port()
    forward = ssh.forward(local, 6006)
    try:
        deadline, body = time.monotonic() + 30, ""
        while time.monotonic() < deadline and forward.poll() is None and "tensorboard-here" not in body:
            try:
                body = requests.get(f"http://127.0.0.1:{local}/", timeout=5).text
            except requests.ConnectionError:
                time.sleep(0.5)
        assert "tensorboard-here" in body, forward.stderr.read() if forward.poll() is not None else "no answer"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_remote_and_agent_forwarding_are_refused(ssh, tmp_path):
    remote = ssh.run("true", args=("-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9"), check=False)
    assert remote.returncode != 0 and "remote port forwarding failed" in remote.stderr
    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not agent_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        out = ssh.run('echo "[$SSH_AUTH_SOCK]"', args=("-A",), env={"SSH_AUTH_SOCK": str(agent_sock)}).stdout
        assert out.strip() == "[]"  # the agent was asked for and not forwarded: no socket in the container
    finally:
        agent.terminate()
        agent.wait(timeout=10)


@pytest.fixture
def laptop(ssh, keys, tunnel, tmp_path):
    """Another laptop's set-up for the same Host: laptop(token, key name)."""

    def make(token: str, key: str = "container") -> SSH:
        return SSH(ssh.user, token, tunnel.base_url, keys[key], tmp_path / key)

    return make


def assert_no_shell(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 255 and "shell-reached" not in proc.stdout, (proc.stdout, proc.stderr)


def test_key_not_in_authorized_keys_is_refused_and_only_keys_are_offered(laptop, ssh, admin_api):
    proc = laptop(user_token(admin_api, ssh.user), "stranger").run("echo", "shell-reached", check=False)
    assert_no_shell(proc)
    assert "Permission denied (publickey)." in proc.stderr  # the only method offered: no password, no keyboard


def test_a_token_that_may_only_access_the_server_is_enough(laptop, ssh, admin_api):
    token = user_token(admin_api, ssh.user, scopes=[f"access:servers!user={ssh.user}"])
    assert laptop(token).run("echo", "shell-reached").stdout.split() == ["shell-reached"]


def test_another_users_token_is_refused(laptop, admin_api):
    [other] = new_users(admin_api, "sshother", 1)
    proc = laptop(user_token(admin_api, other)).run("echo", "shell-reached", check=False)
    assert_no_shell(proc)
    assert "403" in proc.stderr


def test_an_expired_token_is_refused(laptop, ssh, admin_api):
    token = user_token(admin_api, ssh.user, expires_in=1)
    time.sleep(2)
    proc = laptop(token).run("echo", "shell-reached", check=False)
    assert_no_shell(proc)


def test_a_token_without_access_to_the_server_is_refused(laptop, ssh, admin_api):
    token = user_token(admin_api, ssh.user, scopes=[f"read:users!user={ssh.user}", f"read:servers!user={ssh.user}"])
    proc = laptop(token).run("echo", "shell-reached", check=False)
    assert_no_shell(proc)
    assert "403" in proc.stderr


def sessions_of(user: str) -> list[dict]:
    return [row for row in json.loads(hubctl("ssh", "sessions", "--json").stdout) if row["user"] == user]


def test_hubctl_shows_who_has_ssh_sessions_open(ssh, owner):
    session = subprocess.Popen(["ssh", *ssh.options(), ssh.host, "sleep 60"], env=ssh.env(), stderr=subprocess.PIPE)
    try:
        deadline, rows = time.monotonic() + 30, []
        while time.monotonic() < deadline and not rows:
            rows = sessions_of(owner)
        assert [row["session"] for row in rows] == ["jovyan@notty"], rows
        assert rows[0]["since"].startswith(time.strftime("%Y-%m-%dT", time.gmtime()))
    finally:
        session.terminate()
        session.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sessions_of(owner):
        time.sleep(0.5)
    assert sessions_of(owner) == []
