"""Fixtures of the GPU suite (`make test-gpu`, marker `gpu`): a host with an
NVIDIA GPU, its driver, Docker and the NVIDIA container toolkit.

Nothing stands in for the hardware here: the deployment is started with the
compose files that `make up` uses on this host (scripts/compose-files), so the
hub reads the GPUs through NVML itself, and user containers get their devices
by Docker device requests (the default gpu_mode). Selected on a host without a
GPU or without the toolkit's `nvidia` runtime, every test FAILS with the
reason: `make test` deselects the marker instead (`-m "not conda and not gpu"`).

The deployment is PREFIX-gpu on PORT+500 (GPUHUB_TEST_PREFIX, GPUHUB_TEST_PORT),
with a settings file written to .build/ (profiles and allowed_images name the
images under GPUHUB_TAG); everything it makes is removed before and after.
"""

import subprocess

import docker
import pytest
import yaml

from spawner.inventory import Gpu

from ..deployment import ROOT, STANDIN_IMAGE, Deployment
from .gpuhost import GPU_PORT, GPU_PREFIX, NVIDIA_OVERRIDE, PRODUCTION_IMAGE, host_devices, profiles


@pytest.fixture(scope="session", autouse=True)
def gpus_of_host() -> list[Gpu]:
    """The host's leasable devices; first of all, so that a host without a GPU fails with that reason."""
    return host_devices()


@pytest.fixture(scope="session")
def compose_files(gpus_of_host) -> list[str]:
    """The files `make up` starts the hub with on this host; the NVIDIA override must be among them."""
    r = subprocess.run(["scripts/compose-files"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    files = r.stdout.split()
    if NVIDIA_OVERRIDE not in files:
        pytest.fail(
            "this host has a GPU but its Docker engine has no 'nvidia' runtime, so the hub could not read "
            "the GPUs: install the NVIDIA container toolkit and run `nvidia-ctk runtime configure --runtime=docker`, "
            f"then restart dockerd (scripts/compose-files chose: {files})"
        )
    return files


@pytest.fixture(scope="session")
def gpu_deployment(docker_client, gpus_of_host, compose_files):
    """The platform on this GPU host, as make up starts it; torn down (data included) at the end."""
    settings = ROOT / ".build" / f"{GPU_PREFIX}-settings.yml"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(
        yaml.safe_dump(
            {
                "admin_users": ["admin"],
                "image": STANDIN_IMAGE,
                "allowed_images": [PRODUCTION_IMAGE],
                "pull_policy": "never",
                "idle_timeout": 0,
                "profiles": profiles(len(gpus_of_host)),
            }
        )
    )
    deployment = Deployment(GPU_PREFIX, GPU_PORT, HUB_SETTINGS_FILE=str(settings), COMPOSE_FILE=":".join(compose_files))
    deployment.down(docker_client)
    try:
        deployment.up()  # and its first admin, whose token hubctl mints
        yield deployment
    finally:
        deployment.down(docker_client)


@pytest.fixture(scope="session")
def gpu_admin_api(gpu_deployment):
    return gpu_deployment.admin_api()


@pytest.fixture(scope="session")
def production_image(docker_client):
    """The production single-user image under test; a test that needs it fails, naming the build, without it."""
    try:
        return docker_client.images.get(PRODUCTION_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PRODUCTION_IMAGE} is missing: build it with `scripts/build-images --production` (make test-gpu)")
