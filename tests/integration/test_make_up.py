"""`make up` and `make down` as a newcomer runs them (on a project of their own).

Named after the test deployment's prefix and port (GPUHUB_TEST_PREFIX,
GPUHUB_TEST_PORT: PREFIX-makeup on PORT+400) and built under GPUHUB_TAG, so
that two checkouts can run it on one engine. The checkout's own settings.yml
is moved aside for the test and put back after: `make up` must create it.
"""

import re
import shutil
import subprocess
import uuid

import pytest

from ..deployment import PORT, PREFIX, ROOT, TAG, Deployment
from ..hubclient import Browser

pytestmark = pytest.mark.integration

SETTINGS = ROOT / "settings.yml"


@pytest.fixture
def fresh(docker_client):
    # let make up choose the image and the compose files
    deployment = Deployment(f"{PREFIX}-makeup", PORT + 400, GPUHUB_IMAGE="", GPUHUB_TAG=TAG, COMPOSE_FILE="")
    deployment.down(docker_client)
    yield deployment
    deployment.down(docker_client)  # compose down --volumes: the hub's data volume too


@pytest.fixture
def no_settings_file():
    """The checkout as cloned: no settings.yml (an existing one is kept aside, then restored)."""
    aside = ROOT / ".build" / f"settings.yml.aside-{uuid.uuid4().hex[:8]}"
    if SETTINGS.exists():
        aside.parent.mkdir(exist_ok=True)
        shutil.move(SETTINGS, aside)
    try:
        yield
    finally:
        SETTINGS.unlink(missing_ok=True)
        if aside.exists():
            shutil.move(aside, SETTINGS)


def make(deployment, target: str) -> subprocess.CompletedProcess:
    r = deployment.run("make", "-s", target, check=False, timeout=900)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout}\n{r.stderr}"
    return r


def test_make_up_creates_settings_and_the_first_admin_and_down_keeps_data(fresh, no_settings_file):
    up = make(fresh, "up")
    assert f"JupyterHub is up: {fresh.base_url}/" in up.stdout
    assert SETTINGS.read_text() == (ROOT / "settings.example.yml").read_text()
    if "no conda channel is reachable" in up.stderr.lower():  # this machine and CI
        assert "STAND-IN" in up.stderr and "gpuhub/singleuser-standin" in up.stdout
    password = re.search(r"log in as 'admin' with password (\S+)", up.stdout).group(1)
    browser = Browser(fresh.base_url)
    assert "/hub/login" not in browser.login("admin", password).url

    make(fresh, "down")
    assert fresh.run("docker", "volume", "inspect", f"{fresh.prefix}-hub-data", check=False).returncode == 0
    again = make(fresh, "up")
    assert f"with password {password}" in again.stdout  # same admin, data kept
    assert "/hub/login" in Browser(fresh.base_url).login("admin", uuid.uuid4().hex).url


def test_make_up_with_a_bad_setting_names_it_and_leaves_no_hub_running(fresh):
    bad = Deployment(fresh.prefix, PORT + 400, GPUHUB_TAG=TAG, GPUHUB_AUTH="{provider: oidc, client_id: x}")
    r = bad.run("make", "-s", "up", check=False, timeout=900)
    assert r.returncode != 0
    assert "gpuhub: cannot start: GPUHUB_AUTH: bad value for 'auth'" in r.stderr
    assert "auth.authorize_url is missing" in r.stderr and "Traceback" not in r.stderr
    project, service = f"label=com.docker.compose.project={fresh.prefix}", "label=com.docker.compose.service=hub"
    state = bad.run("docker", "ps", "-a", "--filter", project, "--filter", service, "--format", "{{.Status}}").stdout
    assert state.startswith("Exited"), state  # stopped, not restarting in a loop
