"""Device-request mode, checked where it can be on a host without GPUs: the
spawner really creates the container (not started: no NVIDIA driver here) and
the engine's HostConfig.DeviceRequests is inspected.

Seams: a minimal stand-in for JupyterHub's User wrapper (name, admin, groups,
url), since no hub runs in this process; and the host's GPUs: inventory's two
documented seams (``load_nvml``, ``run_nvidia_smi``) stand for a host without
a driver, so the inventory is the four configured ids on any host, a GPU host
included (whose real devices would otherwise replace them). Everything else
is real.
"""

import uuid
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from spawner import GPUDockerSpawner, inventory
from spawner.labels import LABEL_GPUS, LABEL_USER

from ..deployment import PREFIX, STANDIN_IMAGE, container_env

pytestmark = pytest.mark.integration


CONFIGURED = ["0", "1", "2", "3"]


def no_nvidia_smi(argv):
    raise FileNotFoundError("no nvidia-smi: this test's host has no GPU driver")


@pytest.fixture
def configured_inventory(monkeypatch):
    """The inventory is CONFIGURED, whatever GPUs this host has."""
    monkeypatch.setattr(inventory, "load_nvml", lambda: None)
    monkeypatch.setattr(inventory, "run_nvidia_smi", no_nvidia_smi)
    assert inventory.discover_with_source(CONFIGURED)[0] == "config"


@pytest.fixture
def make_spawner(docker_client, configured_inventory):
    created = []

    def make(**traits) -> GPUDockerSpawner:
        name = f"dr{uuid.uuid4().hex[:6]}"
        user = SimpleNamespace(name=name, admin=False, groups=[], url=f"/user/{name}/")
        spawner = GPUDockerSpawner(
            user=user, hub=Hub(), prefix=PREFIX, image=STANDIN_IMAGE,
            network_name="bridge", api_token="unused", gpu_ids=CONFIGURED, **traits,
        )  # fmt: skip
        created.append(spawner)
        return spawner

    yield make
    for spawner in created:
        for c in docker_client.containers.list(all=True, filters={"name": spawner.object_name}):
            c.remove(force=True)
        for v in docker_client.volumes.list(filters={"label": f"{LABEL_USER}={spawner.user.name}"}):
            v.remove(force=True)


async def test_device_requests_reach_the_engine(make_spawner, docker_client):
    spawner = make_spawner(gpus=2)
    container = docker_client.containers.get((await spawner.create_object())["Id"])
    [request] = container.attrs["HostConfig"]["DeviceRequests"]
    leased = container.labels[LABEL_GPUS].split(",")
    assert request["Driver"] == "nvidia" and request["Capabilities"] == [["gpu"]]
    assert request["DeviceIDs"] == leased and len(leased) == 2 and set(leased) <= set(CONFIGURED)
    assert container.attrs["HostConfig"]["Runtime"] == "runc"
    env = container_env(container)
    assert env["NVIDIA_VISIBLE_DEVICES"] == ",".join(leased)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # renumbered inside the container
    progress = spawner.progress()
    assert (await anext(progress))["message"] == f"Leased GPU {', '.join(leased)}"
    await progress.aclose()


async def test_cpu_server_gets_no_device(make_spawner, docker_client):
    spawner = make_spawner(gpus=0)
    container = docker_client.containers.get((await spawner.create_object())["Id"])
    assert not container.attrs["HostConfig"]["DeviceRequests"]
    assert LABEL_GPUS not in container.labels
    env = container_env(container)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
