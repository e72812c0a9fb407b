"""GPU-idle reclaim through the sample seam: a deployment of its own whose hub
reads GPU activity from a JSON file in its data volume (gpu_samples_file)
instead of NVML. A server whose GPU stays idle for 20 s is stopped although
nothing else looks idle (the idle culler is off); its user is warned on the
home page first and told why afterwards. A busy server and one of the opt-out
group keep running."""

import html
import json
import re

import pytest

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS, LABEL_USER

from ..deployment import PORT, PREFIX, Deployment, api, create_user, wait_running, wait_stopped, wait_until
from ..hubclient import Browser

pytestmark = pytest.mark.integration

SAMPLES = "/srv/jupyterhub/data/gpu-samples.json"
IDLE, BUSY = {"sm": 0, "memory": 1}, {"sm": 85, "memory": 40}


@pytest.fixture(scope="module")
def reclaim(docker_client):
    deployment = Deployment(
        f"{PREFIX}-reclaim",
        PORT + 320,
        GPUHUB_IDLE_TIMEOUT="0",
        GPUHUB_GPU_IDLE_TIMEOUT="20",
        GPUHUB_GPU_IDLE_WARNING="15",
        GPUHUB_GPU_IDLE_EXEMPT_GROUP="long-runs",
        GPUHUB_GPU_SAMPLES_FILE=SAMPLES,
    )
    with deployment.running(docker_client):
        yield deployment


def write_samples(deployment, samples: dict) -> None:
    hub = deployment.hub_container()
    # a half-written file is only an unreadable round for the service (logged, nothing stopped)
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    code, out = hub.exec_run(["python3", "-c", script, SAMPLES, json.dumps(samples)])
    assert code == 0, out.decode()


def leased_gpu(docker_client, deployment, user: str) -> str:
    filters = {"label": [f"{LABEL_DEPLOYMENT}={deployment.prefix}", f"{LABEL_USER}={user}", LABEL_GPUS]}
    [container] = docker_client.containers.list(all=True, filters=filters)
    return container.labels[LABEL_GPUS]


def announcement(browser: Browser) -> str:
    page = browser.s.get(browser.url("/hub/home"), timeout=30).text
    match = re.search(r'class="[^"]*announcement[^"]*">(.*?)</div>', page, re.S)
    return html.unescape(match.group(1).strip()) if match else ""


def test_an_idle_gpu_server_is_warned_then_stopped_and_told_why(reclaim, docker_client):
    admin = reclaim.admin_api()
    browsers = {}
    for role in ("idler", "worker", "optout"):
        name, password = create_user(on=reclaim)
        browsers[role] = Browser(reclaim.base_url)
        assert browsers[role].login(name, password).ok
        browsers[role].name = name
    assert api(admin, "POST", "/groups/long-runs").status_code == 201
    r = api(admin, "POST", "/groups/long-runs/users", json={"users": [browsers["optout"].name]})
    assert r.ok, r.text
    write_samples(reclaim, {})  # no samples yet: nobody is idle
    for browser in browsers.values():
        r = api(admin, "POST", f"/users/{browser.name}/server", json={"profile": "gpu-1"})
        assert r.status_code in (201, 202), r.text
    for browser in browsers.values():
        wait_running(admin, browser.name)
    gpu = {role: leased_gpu(docker_client, reclaim, b.name) for role, b in browsers.items()}
    write_samples(reclaim, {gpu["idler"]: IDLE, gpu["worker"]: BUSY, gpu["optout"]: IDLE})

    warned = wait_until("the idle warning", lambda: announcement(browsers["idler"]), 30)
    assert re.fullmatch(
        r"Your server's GPUs have been idle for \d+ s: it will be stopped in \d+ s \(at \d\d:\d\d UTC\) "
        r"unless they are used again\. Your files are kept\.",
        warned,
    ), warned
    wait_stopped(admin, browsers["idler"].name, timeout=60)
    told = announcement(browsers["idler"])
    assert re.fullmatch(r"Your server was stopped: GPU idle for \d+ s; your files are kept\.", told), told
    leases = {"label": [f"{LABEL_DEPLOYMENT}={reclaim.prefix}", f"{LABEL_USER}={browsers['idler'].name}"]}
    assert docker_client.containers.list(all=True, filters=leases) == []  # its GPU is free again
    culls = reclaim.metrics()
    assert culls[("gpuhub_culls_total", (("reason", "gpu-idle"),))] == 1
    assert ("gpuhub_culls_total", (("reason", "idle"),)) not in culls  # the idle culler is off here

    for role in ("worker", "optout"):  # busy, and exempt: running, nothing announced
        model = api(admin, "GET", f"/users/{browsers[role].name}").json()
        assert model["server"] and not model["pending"], role
        assert announcement(browsers[role]) == "", role

    # Starting again clears the stop notice (the new lease has no idle samples).
    name = browsers["idler"].name
    assert api(admin, "POST", f"/users/{name}/server", json={"profile": "cpu"}).status_code in (201, 202)
    wait_running(admin, name)
    assert announcement(browsers["idler"]) == ""
