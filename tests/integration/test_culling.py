"""Idle servers are culled (jupyterhub-idle-culler as a hub service with its
scoped role), and culling returns the server's GPUs: a deployment of its own
with a 15-second idle timeout."""

import pytest

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS

from ..deployment import PORT, PREFIX, Deployment, api, wait_running, wait_stopped

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def culling(docker_client):
    deployment = Deployment(f"{PREFIX}-cull", PORT + 300, GPUHUB_IDLE_TIMEOUT="15")
    deployment.down(docker_client)
    try:
        deployment.up()
        yield deployment
    finally:
        deployment.down(docker_client)


def test_idle_server_is_culled_and_its_gpu_returns(culling, docker_client):
    admin = culling.admin_api()
    assert api(admin, "POST", "/users/sleepy").status_code == 201
    assert api(admin, "POST", "/users/sleepy/server", json={"profile": "gpu-1"}).status_code in (201, 202)
    wait_running(admin, "sleepy")
    leased = {"label": [f"{LABEL_DEPLOYMENT}={culling.prefix}", LABEL_GPUS]}
    assert len(docker_client.containers.list(all=True, filters=leased)) == 1

    wait_stopped(admin, "sleepy", timeout=120)  # nobody stops it but the culler
    assert docker_client.containers.list(all=True, filters=leased) == []
