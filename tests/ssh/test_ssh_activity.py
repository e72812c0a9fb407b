"""An SSH session into one's container counts as activity for the idle culler.

Its websocket goes through the hub's proxy, which records what the laptop
sends as the route's activity (configurable-http-proxy counts client data
only), and through jupyter-server-proxy, which records traffic both ways as
the server's own activity, which jupyterhub-singleuser reports to the hub. The
session here only receives (a training log followed with `ssh ... tail -f`
is the same), so the second path is the one under test. A deployment of its
own: idle_timeout 20 s, both reports every 5 s (hub_config.d/activity.py)."""

import pytest

from tests.deployment import PORT, PREFIX, ROOT, Deployment, api, new_users, wait_stopped

from .conftest import SSH, Tunnel, start_with_key, user_token

pytestmark = pytest.mark.integration

IDLE_TIMEOUT = 20


@pytest.fixture(scope="module")
def idle_hub(docker_client, gateway, keys):
    deployment = Deployment(
        f"{PREFIX}-sshidle",
        PORT + 710,
        GPUHUB_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
        HUB_CONFIG_D=str(ROOT / "tests/ssh/hub_config.d"),
    )
    deployment.down(docker_client)
    try:
        deployment.up()
        tunnel = Tunnel(keys, PORT + 710, local_port=PORT + 721).open()
        try:
            yield deployment, tunnel
        finally:
            tunnel.close()
    finally:
        deployment.down(docker_client)


def server_running(admin, user: str) -> bool:
    model = api(admin, "GET", f"/users/{user}").json()
    return bool(model.get("server")) and not model.get("pending")


def test_an_ssh_session_keeps_the_server_from_being_culled(idle_hub, docker_client, keys, tmp_path):
    deployment, tunnel = idle_hub
    admin = deployment.admin_api()
    [user] = new_users(admin, "sshidle", 1)
    start_with_key(admin, docker_client, user, keys["container"], prefix=deployment.prefix)
    ssh = SSH(user, user_token(admin, user), tunnel.base_url, keys["container"], tmp_path / "laptop")

    # A session that prints a line every 2 s for 2.5 idle timeouts; nothing else touches the server.
    ticks = 5 * IDLE_TIMEOUT // 4
    session = ssh.run(f"for i in $(seq {ticks}); do echo tick; sleep 2; done", timeout=4 * IDLE_TIMEOUT)
    assert session.stdout.split().count("tick") == ticks
    assert server_running(admin, user), "culled during an SSH session"

    # The control: without the session, the same server goes within the timeout and a few culler rounds.
    wait_stopped(admin, user, timeout=IDLE_TIMEOUT * 4)
