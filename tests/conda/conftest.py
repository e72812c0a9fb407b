"""Fixtures of the conda suite (`make test-conda`).

It builds the PRODUCTION single-user image and runs conda inside it, so it
needs a reachable conda channel. Where none is reachable (this project's CI,
offline hosts) every test is skipped with a reason that says what was probed.

Environment:
  CONDA_CHANNEL_URL   URL to probe instead of conda-forge's noarch repodata
  GPUHUB_CONDA_BUILD_TIMEOUT  seconds allowed for the image build (default 5400)

Every container and volume made here is named gpuhub-test-conda-* and removed
at the end of the session (and at its start, in case a previous run died).
"""

import os
import subprocess
import uuid

import docker
import pytest

from .condatools import DEFAULT_PROBE, IMAGE, PREFIX, PROBE_TIMEOUT, REPO, Box, probe_channel


@pytest.fixture(scope="session", autouse=True)
def conda_channel():
    url = os.environ.get("CONDA_CHANNEL_URL") or DEFAULT_PROBE
    why = probe_channel(url)
    if why is not None:
        pytest.skip(
            f"no conda channel reachable: probed {url} "
            f"(timeout {PROBE_TIMEOUT}s): {why}; set CONDA_CHANNEL_URL to probe another"
        )
    return url


@pytest.fixture(scope="session")
def docker_client(conda_channel):
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as err:
        pytest.skip(f"a conda channel is reachable but the Docker engine is not: {err}")
    remove_leftovers(client)
    yield client
    remove_leftovers(client)
    client.close()


def remove_leftovers(client):
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        volume.remove(force=True)


@pytest.fixture(scope="session")
def image(docker_client):
    """Build the production image (docker's layer cache makes a rebuild fast)."""
    extra_ca = REPO / ".build" / "extra-ca.crt"
    if not extra_ca.exists():  # as scripts/build-images does for "no extra CA"
        extra_ca.parent.mkdir(exist_ok=True)
        extra_ca.touch()
    timeout = int(os.environ.get("GPUHUB_CONDA_BUILD_TIMEOUT", "5400"))
    cmd = ["docker", "build", "-f", "images/singleuser/Dockerfile", "-t", IMAGE, "."]
    try:
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(cmd)}` did not finish within {timeout}s")
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` failed ({result.returncode}):\n{(result.stdout + result.stderr)[-6000:]}")
    return IMAGE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def boxes(request, docker_client, image):
    """Factory of containers; on failure their state and logs are printed."""
    made = []

    def make(volume=None):
        box = Box(docker_client, image, volume)
        made.append(box)
        return box

    yield make
    report = getattr(request.node, "report_call", None)
    for box in made:
        if report is not None and report.failed:
            print(box.dump())
        box.remove()


@pytest.fixture
def box(boxes):
    return boxes()


@pytest.fixture
def home_volume(docker_client):
    """A fresh named volume for /home/jovyan, removed with its containers afterwards."""
    volume = docker_client.volumes.create(name=f"{PREFIX}home-{uuid.uuid4().hex[:10]}")
    yield volume.name
    for container in docker_client.containers.list(all=True, filters={"volume": volume.name}):
        container.remove(force=True, v=True)
    volume.remove(force=True)
