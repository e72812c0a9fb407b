"""The platform on a real Docker Swarm: a manager and two workers with two GPUs
each (Docker-in-Docker nodes, tests/swarm/cluster.py), the hub deployed by
scripts/cluster-up, driven through the hub's REST API."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from spawner.labels import LABEL_USER
from spawner.swarmleases import resource_env

from ..deployment import api, new_users, wait_running, wait_stopped
from .cluster import KIND, NAME, TEST_RUNTIME, WORKERS

pytestmark = pytest.mark.swarm
ALL_GPUS = {(f"{NAME}-{node}", gpu) for node, ids in WORKERS.items() for gpu in ids}


def start(admin_api, user: str, profile: str = "gpu-1") -> requests.Response:
    return api(admin_api, "POST", f"/users/{user}/server", json={"profile": profile})


def stop(admin_api, user: str) -> None:
    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user, timeout=90)


def services_of(cluster, user: str) -> list:
    return cluster.manager.services.list(filters={"label": f"{LABEL_USER}={user}"})


def wait_no_service(cluster, user: str, timeout: float = 30) -> None:
    """The hub reports a server stopped before its stop (which removes the service) ends."""
    deadline = time.monotonic() + timeout
    while services_of(cluster, user):
        assert time.monotonic() < deadline, f"service of {user} still there after {timeout}s"
        time.sleep(0.5)


def reachable(cluster, admin_api, user: str, timeout: float = 60) -> None:
    """The server answers through the hub's proxy (after a hub restart: once its new address is known)."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{cluster.base_url}/user/{user}/api/status", headers=admin_api.headers, timeout=30)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 200, r.text[:300]


def placement(cluster, user: str) -> tuple[str, str, tuple[str, ...]]:
    """(node, container id, GPU ids) of ``user``'s running server, as Swarm has it."""
    [service] = services_of(cluster, user)
    running = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    assert len(running) == 1, [t["Status"] for t in service.tasks()]
    task = running[0]
    node = cluster.manager.nodes.get(task["NodeID"]).attrs["Description"]["Hostname"]
    gpus = tuple(r["NamedResourceSpec"]["Value"] for r in task.get("GenericResources", []) if "NamedResourceSpec" in r)
    return node, task["Status"]["ContainerStatus"]["ContainerID"], gpus


def node_engine(cluster, node: str):
    return cluster.nodes[node.removeprefix(f"{NAME}-")]


def server_process_env(container) -> dict[str, str]:
    """The environment of the single-user server's own process (tini's child), not the container's."""
    script = "tr '\\0' '\\n' < /proc/$(cut -d' ' -f1 /proc/1/task/1/children)/environ"
    code, out = container.exec_run(["bash", "-c", script], user="1000")
    assert code == 0, out.decode()
    return dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)


def held(cluster, users) -> dict[str, tuple[str, str]]:
    """user -> (node, GPU) for each 1-GPU server of ``users`` that runs."""
    found = {}
    for user in users:
        if services_of(cluster, user):
            node, _, gpus = placement(cluster, user)
            assert len(gpus) == 1, (user, gpus)
            found[user] = (node, gpus[0])
    return found


def test_a_gpu_server_runs_on_a_worker_with_the_device_swarm_assigned(cluster, admin_api):
    [user] = new_users(admin_api, "one", 1)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    node, container_id, gpus = placement(cluster, user)
    assert len(gpus) == 1 and (node, gpus[0]) in ALL_GPUS
    container = node_engine(cluster, node).containers.get(container_id)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env[resource_env(KIND)] == gpus[0]
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # it comes from Swarm's assignment, at start
    assert server_process_env(container)["NVIDIA_VISIBLE_DEVICES"] == gpus[0]
    assert container.attrs["HostConfig"]["Runtime"] == TEST_RUNTIME.split("=")[0]  # the seam, as the node's default
    assert container.attrs["Config"]["User"] == "1000:100"
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    reachable(cluster, admin_api, user)  # through the hub's proxy, manager to worker over the overlay network
    stop(admin_api, user)
    assert services_of(cluster, user) == []


@pytest.fixture
def clean_pool(cluster, admin_api):
    """No server runs before or after the test: every GPU is free."""

    def stop_all():
        for model in api(admin_api, "GET", "/users").json():
            if model.get("server") or model.get("pending"):
                stop(admin_api, model["name"])

    stop_all()
    yield
    stop_all()


def refused_with(response: requests.Response, *words: str) -> str:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    message = response.json()["message"]
    assert all(word in message for word in words), message
    return message


def test_six_users_on_four_gpus_across_two_nodes(cluster, admin_api, clean_pool):
    users = new_users(admin_api, "six", 6)
    with ThreadPoolExecutor(6) as pool:
        answers = dict(zip(users, pool.map(lambda u: start(admin_api, u), users), strict=True))
    refused = {u for u, r in answers.items() if r.status_code >= 400}
    for user in set(users) - refused:
        wait_running(admin_api, user)
    assert len(refused) == 2, {u: (r.status_code, r.text[:200]) for u, r in answers.items()}
    for user in refused:
        refused_with(answers[user], "No free GPU", "4 of the 4 GPUs in this cluster are leased")
        assert services_of(cluster, user) == []  # nothing left behind
    leases = held(cluster, users)
    assert set(leases) == set(users) - refused
    assert set(leases.values()) == ALL_GPUS  # four servers, four distinct (node, device) pairs

    rows = json.loads(cluster.hubctl("gpus", "--json"))
    assert {(row["node"], row["gpu"]): row["users"] for row in rows} == {pair: [u] for u, pair in leases.items()}

    # Stop two: the two refused users get exactly the freed devices.
    leavers = sorted(leases)[:2]
    freed = {leases[user] for user in leavers}
    for user in leavers:
        stop(admin_api, user)
    for user in refused:
        assert start(admin_api, user).status_code in (201, 202)
        wait_running(admin_api, user)
    assert {pair for user, pair in held(cluster, refused).items()} == freed
    assert len(set(held(cluster, users).values())) == 4


def test_workspace_stays_on_its_node_and_its_user_is_pinned_there(cluster, admin_api, clean_pool):
    [user] = new_users(admin_api, "pin", 1)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    node, container_id, _ = placement(cluster, user)
    container = node_engine(cluster, node).containers.get(container_id)
    code, out = container.exec_run(["bash", "-c", "echo kept > ~/notes.txt"], user="1000")
    assert code == 0, out
    stop(admin_api, user)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    again, container_id, _ = placement(cluster, user)
    [service] = services_of(cluster, user)
    node_id = cluster.manager.nodes.get(again).id
    assert service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={node_id}"]
    assert again == node
    container = node_engine(cluster, node).containers.get(container_id)
    assert container.exec_run(["cat", "/home/jovyan/notes.txt"], user="1000").output == b"kept\n"


def set_availability(cluster, node: str, availability: str) -> None:
    target = cluster.manager.nodes.get(node)
    target.update({**target.attrs["Spec"], "Availability": availability})


def test_a_drained_worker_stops_its_servers_and_its_users_wait_for_their_node(cluster, admin_api, clean_pool):
    [user] = new_users(admin_api, "drain", 1)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    node, _, _ = placement(cluster, user)
    set_availability(cluster, node, "drain")
    try:
        wait_stopped(admin_api, user, timeout=90)  # the hub's poll finds the task gone
        wait_no_service(cluster, user)
        rows = json.loads(cluster.hubctl("gpus", "--json"))
        assert all(row["users"] == [] for row in rows), rows  # its GPU is back in the pool
        # Its workspace is on the drained node: refused, never an empty one elsewhere.
        refused_with(start(admin_api, user), f"Your workspace is on node {node}")
        assert services_of(cluster, user) == []
    finally:
        set_availability(cluster, node, "active")
    time.sleep(3)  # the node's anchor task rejoins the hub's network (docker-stack.yml)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    assert placement(cluster, user)[0] == node


def test_a_hub_restart_keeps_servers_running_and_hands_no_device_twice(cluster, admin_api, clean_pool):
    first = new_users(admin_api, "keep", 2)
    for user in first:
        assert start(admin_api, user).status_code in (201, 202)
        wait_running(admin_api, user)
    before = {user: placement(cluster, user) for user in first}
    cluster.manager.services.get(f"{NAME}_hub").force_update()
    time.sleep(5)
    cluster.wait_healthy()
    for user in first:
        wait_running(admin_api, user)
        assert placement(cluster, user) == before[user]  # the same container, untouched
        reachable(cluster, admin_api, user)
    later = new_users(admin_api, "after", 3)
    answers = {user: start(admin_api, user) for user in later}
    refused = {user for user, r in answers.items() if r.status_code >= 400}
    assert len(refused) == 1, {u: (r.status_code, r.text[:200]) for u, r in answers.items()}
    refused_with(answers[min(refused)], "No free GPU")
    for user in set(later) - set(refused):
        wait_running(admin_api, user)
    assert set(held(cluster, first + later).values()) == ALL_GPUS
