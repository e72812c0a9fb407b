"""`make up` and `make down` as a newcomer runs them (on a project of their own)."""

import re
import subprocess
import uuid

import pytest

from ..deployment import ROOT, Deployment
from ..hubclient import Browser

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(docker_client):
    deployment = Deployment("gpuhub-makeup", 18400, GPUHUB_IMAGE="")  # let make up choose
    deployment.down(docker_client)
    yield deployment
    deployment.down(docker_client)  # compose down --volumes: the hub's data volume too


def make(deployment, target: str) -> subprocess.CompletedProcess:
    r = deployment.run("make", "-s", target, check=False, timeout=900)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout}\n{r.stderr}"
    return r


def test_make_up_creates_the_first_admin_and_down_keeps_data(fresh):
    up = make(fresh, "up")
    assert "JupyterHub is up: http://127.0.0.1:18400/" in up.stdout
    if "no conda channel is reachable" in up.stderr.lower():  # this machine and CI
        assert "STAND-IN" in up.stderr and "gpuhub/singleuser-standin" in up.stdout
    password = re.search(r"log in as 'admin' with password (\S+)", up.stdout).group(1)
    browser = Browser(fresh.base_url)
    assert "/hub/login" not in browser.login("admin", password).url

    make(fresh, "down")
    assert fresh.run("docker", "volume", "inspect", "gpuhub-makeup-hub-data", check=False).returncode == 0
    again = make(fresh, "up")
    assert f"with password {password}" in again.stdout  # same admin, data kept
    assert "/hub/login" in Browser(fresh.base_url).login("admin", uuid.uuid4().hex).url
    assert (ROOT / "settings.yml").exists()
