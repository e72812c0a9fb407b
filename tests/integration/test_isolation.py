"""What one user can do to another or to the host: networks, PIDs, logs, request sizes."""

import time

import pytest

from spawner.labels import LABEL_DEPLOYMENT, LABEL_USER

from ..deployment import (
    BASE_URL,
    PREFIX,
    api,
    exec_as_user,
    new_users,
    user_containers,
    wait_running,
    wait_stopped,
)

pytestmark = pytest.mark.integration

# Connects to host:port from inside a container; prints "open" or the error's name.
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except OSError as e:
    print(type(e).__name__)
"""


def probe(container, host: str, port: int, user: str = "1000") -> str:
    code, out = container.exec_run(["python3", "-c", PROBE, host, str(port)], user=user)
    assert code == 0, out.decode()
    return out.decode().strip()


@pytest.fixture
def two_servers(admin_api, docker_client):
    users = new_users(admin_api, "iso", 2)
    for user in users:
        assert api(admin_api, "POST", f"/users/{user}/server", json={"profile": "cpu"}).status_code in (201, 202)
    for user in users:
        wait_running(admin_api, user)
    yield [(user, user_containers(docker_client, user)[0]) for user in users]
    for user in users:
        api(admin_api, "DELETE", f"/users/{user}/server")
        wait_stopped(admin_api, user)


def ip_of(container) -> str:
    container.reload()
    [network] = container.attrs["NetworkSettings"]["Networks"].values()
    return network["IPAddress"]


def hub_container(docker_client):
    return docker_client.containers.list(filters={"label": f"com.docker.compose.project={PREFIX}"})[0]


def test_user_containers_cannot_reach_each_other(two_servers, docker_client):
    (alice, a), (bob, b) = two_servers
    b.exec_run(["bash", "-c", "nohup python3 -m http.server 9000 >/dev/null 2>&1 &"], user="1000", detach=True)
    deadline = time.monotonic() + 30
    while probe(b, "127.0.0.1", 9000) != "open":  # bob's TensorBoard-like port comes up
        assert time.monotonic() < deadline, "http.server did not start in bob's container"
        time.sleep(0.5)
    for port in (9000, 8888):
        assert probe(a, ip_of(b), port) != "open", f"{alice} reached {bob}:{port}"
        assert probe(b, ip_of(a), port) != "open", f"{bob} reached {alice}:{port}"
    hub = hub_container(docker_client)
    assert probe(hub, ip_of(b), 9000, user="0") == "open"  # the hub (and its proxy) reaches every server
    assert probe(a, "hub", 8081) == "open"  # and every server reaches the hub's API


def test_each_server_has_a_network_of_its_own(two_servers, docker_client):
    hub = hub_container(docker_client)
    hub.reload()
    networks = []
    for user, container in two_servers:
        [name] = container.attrs["NetworkSettings"]["Networks"]
        network = docker_client.networks.get(name)
        members = {c["Name"] for c in network.attrs["Containers"].values()}
        assert members == {container.name, hub.name}, members
        assert network.attrs["Labels"] == {LABEL_DEPLOYMENT: PREFIX, LABEL_USER: user}
        networks.append(name)
    assert len(set(networks)) == 2 and set(networks) <= set(hub.attrs["NetworkSettings"]["Networks"])


def test_stopping_a_server_removes_its_network(admin_api, docker_client):
    [user] = new_users(admin_api, "net", 1)
    assert api(admin_api, "POST", f"/users/{user}/server", json={"profile": "cpu"}).status_code in (201, 202)
    wait_running(admin_api, user)
    [name] = user_containers(docker_client, user)[0].attrs["NetworkSettings"]["Networks"]
    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user)
    assert docker_client.networks.list(names=[name]) == []


def test_pids_are_limited_and_logs_rotated(two_servers, docker_client):
    _, container = two_servers[0]
    host = container.attrs["HostConfig"]
    assert host["PidsLimit"] == 8192
    assert exec_as_user(container, "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max") == (
        "8192\n"
    )
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    hub_log = hub_container(docker_client).attrs["HostConfig"]["LogConfig"]
    assert hub_log == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "5"}}


@pytest.mark.parametrize("body", ["[1, 2]", '"cpu"', "42"])
def test_a_spawn_body_that_is_not_an_object_is_a_400(body, admin_api, docker_client):
    [user] = new_users(admin_api, "body", 1)
    r = api(admin_api, "POST", f"/users/{user}/server", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert user_containers(docker_client, user) == []


def test_huge_user_input_is_neither_accepted_nor_echoed(admin_api, docker_client):
    [user] = new_users(admin_api, "big", 1)
    r = api(admin_api, "POST", f"/users/{user}/server", json={"profile": "p" * 200_000})
    assert r.status_code == 400 and len(r.content) < 2000, (r.status_code, len(r.content))
    assert "Unknown profile" in r.json()["message"]
    # Over the hub's body cap the hub drops the connection unread; the proxy answers with its error page.
    big = admin_api.post(f"{BASE_URL}/hub/api/users/{user}/server", json={"profile": "p" * 1_000_000}, timeout=60)
    assert big.status_code >= 400 and "p" * 100 not in big.text and len(big.content) < 10_000, big.status_code
    assert user_containers(docker_client, user) == []
