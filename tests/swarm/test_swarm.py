"""The platform on a real Docker Swarm: a manager and two workers with two GPUs
each (Docker-in-Docker nodes, tests/swarm/cluster.py), the hub deployed by
scripts/cluster-up, driven through the hub's REST API."""

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
    # reachable through the hub's proxy, from the manager to the worker over the overlay network
    r = requests.get(f"{cluster.base_url}/user/{user}/api/status", headers=admin_api.headers, timeout=30)
    assert r.status_code == 200, r.text[:300]
    stop(admin_api, user)
    assert services_of(cluster, user) == []
