"""On a real GPU host: the hub finds the host's GPUs through NVML, and a
user's container sees exactly the devices it leased, in nvidia-smi and in
PyTorch (production image). Fixtures and how to run: conftest.py beside this.
"""

import json

import pytest

from spawner import inventory
from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS, LABEL_USER

from ..deployment import api, new_users, wait_running, wait_stopped
from .gpuhost import GPU_PREFIX, PRODUCTION_IMAGE

pytestmark = pytest.mark.gpu
SPAWN_TIMEOUT = 600  # the production image is large and starts conda-based JupyterLab
TORCH_PYTHON = "/opt/conda/envs/pytorch/bin/python"  # the team env "pytorch" (kernels/pytorch.yml)


def hub_container(docker_client):
    [hub] = docker_client.containers.list(
        filters={"label": [f"com.docker.compose.project={GPU_PREFIX}", "com.docker.compose.service=hub"]}
    )
    return hub


def leased_server(admin_api, docker_client, profile: str):
    """A new user's running server of ``profile``: (user, container, leased ids)."""
    [user] = new_users(admin_api, "gpu", 1)
    r = api(admin_api, "POST", f"/users/{user}/server", json={"profile": profile}, timeout=SPAWN_TIMEOUT)
    assert r.status_code in (201, 202), r.text
    wait_running(admin_api, user, timeout=SPAWN_TIMEOUT)
    [container] = docker_client.containers.list(
        filters={"label": [f"{LABEL_DEPLOYMENT}={GPU_PREFIX}", f"{LABEL_USER}={user}"]}
    )
    return user, container, container.labels[LABEL_GPUS].split(",")


def run_as_user(container, argv: list[str]) -> str:
    code, out = container.exec_run(argv, user="1000")
    assert code == 0, f"{argv} failed ({code}):\n{out.decode()}"
    return out.decode()


@pytest.fixture
def server(gpu_admin_api, docker_client):
    """server(profile) -> (container, leased ids); the server is stopped afterwards."""
    users = []

    def start(profile: str):
        user, container, leased = leased_server(gpu_admin_api, docker_client, profile)
        users.append(user)
        return container, leased

    yield start
    for user in users:
        api(gpu_admin_api, "DELETE", f"/users/{user}/server")
        wait_stopped(gpu_admin_api, user, timeout=120)


def needs_devices(gpus_of_host, n: int) -> None:
    if len(gpus_of_host) < n:
        pytest.skip(f"this host has {len(gpus_of_host)} leasable device(s); the test leases {n}")


def test_the_hub_reads_the_hosts_gpus_through_nvml_with_the_utility_capability_only(
    gpu_deployment, docker_client, gpus_of_host
):
    hub = hub_container(docker_client)
    assert hub.attrs["HostConfig"]["Runtime"] == "nvidia"
    env = dict(item.split("=", 1) for item in hub.attrs["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    code, out = hub.exec_run(["sh", "-c", "ldconfig -p | grep -c 'libcuda\\.so' || true"])
    assert out.decode().strip() == "0", "the hub container has CUDA (the compute capability): it should not"

    rows = {row["gpu"]: row for row in json.loads(gpu_deployment.hubctl("gpus", "--json").stdout)}
    assert set(rows) == {gpu.id for gpu in gpus_of_host}, "the hub's inventory is not the host's `nvidia-smi -L`"
    for gpu in gpus_of_host:
        row = rows[gpu.id]
        assert isinstance(row["memory_mib"], int) and isinstance(row["memory_used_mib"], int), row
        if gpu.id.startswith("GPU-"):  # NVML reports no utilisation for a MIG instance
            assert isinstance(row["utilization_percent"], int), row


@pytest.mark.parametrize("count", [1, 2])
def test_nvidia_smi_in_the_container_lists_exactly_the_leased_devices(count, server, gpus_of_host):
    needs_devices(gpus_of_host, count)
    container, leased = server(f"gpu-{count}")
    assert len(leased) == count and set(leased) <= {gpu.id for gpu in gpus_of_host}
    listing = run_as_user(container, ["nvidia-smi", "-L"])
    assert sorted(gpu.id for gpu in inventory.parse_smi_list(listing)) == sorted(leased), listing


@pytest.mark.parametrize("count", [1, 2])
def test_torch_in_the_production_image_counts_the_leased_devices(count, server, gpus_of_host, production_image):
    needs_devices(gpus_of_host, count)
    container, leased = server(f"gpu-{count}-production")
    assert container.image.id == production_image.id, f"not {PRODUCTION_IMAGE}"
    script = "import torch; print(torch.cuda.is_available(), torch.cuda.device_count())"
    available, seen = run_as_user(container, [TORCH_PYTHON, "-c", script]).split()
    # CUDA enumerates one MIG instance per process, however many are visible.
    expected = 1 if any(gpu.startswith("MIG-") for gpu in leased) else len(leased)
    assert (available, int(seen)) == ("True", expected), f"leased {leased}"
