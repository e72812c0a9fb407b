"""Idle servers are culled (jupyterhub-idle-culler as a hub service with its
scoped role, one timeout per profile through its cull_arbiter_hook), and culling
returns the server's GPUs: a deployment of its own where the site's timeout and
the GPU profile's are 15 seconds and the CPU profile's is an hour."""

import json
import time
from datetime import datetime, timezone

import pytest

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS

from ..deployment import PORT, PREFIX, Deployment, api, user_model, wait_running, wait_stopped

pytestmark = pytest.mark.integration

PROFILES = [
    {"display_name": "CPU", "slug": "cpu", "default": True, "idle_timeout": 3600, "spawner_override": {"gpus": 0}},
    {"display_name": "1 GPU", "slug": "gpu-1", "idle_timeout": 15, "spawner_override": {"gpus": 1}},
]


def idle_seconds(model: dict) -> float:
    last = datetime.fromisoformat(model["servers"][""]["last_activity"].replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - last).total_seconds()


@pytest.fixture(scope="module")
def culling(docker_client):
    deployment = Deployment(
        f"{PREFIX}-cull", PORT + 300, GPUHUB_IDLE_TIMEOUT="15", GPUHUB_PROFILES=json.dumps(PROFILES)
    )
    with deployment.running(docker_client):
        yield deployment


def test_an_idle_gpu_server_is_culled_its_gpu_returns_and_a_cpu_server_outlives_it(culling, docker_client):
    admin = culling.admin_api()
    for user, profile in (("sleepy", "gpu-1"), ("thinker", "cpu")):
        assert api(admin, "POST", f"/users/{user}").status_code == 201
        assert api(admin, "POST", f"/users/{user}/server", json={"profile": profile}).status_code in (201, 202)
        wait_running(admin, user)
    leased = {"label": [f"{LABEL_DEPLOYMENT}={culling.prefix}", LABEL_GPUS]}
    assert len(docker_client.containers.list(all=True, filters=leased)) == 1

    wait_stopped(admin, "sleepy", timeout=120)  # nobody stops it but the culler
    assert docker_client.containers.list(all=True, filters=leased) == []
    # Idle past the site's 15 s and two more rounds of the culler (every 5 s): only its profile's hour keeps it.
    deadline = time.monotonic() + 90
    while idle_seconds(user_model(admin, "thinker")) < 25:
        assert time.monotonic() < deadline, "the CPU server kept being active"
        time.sleep(1)
    thinker = user_model(admin, "thinker")
    assert thinker["server"] and not thinker["pending"]
    log = culling.run("scripts/compose", "logs", "hub").stdout
    assert "Culling server sleepy" in log and "Culling server thinker" not in log
    assert culling.metrics()[("gpuhub_culls_total", (("reason", "idle"),))] == 1
