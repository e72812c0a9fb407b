"""Run the hub image: versions, proxy, packages, layout, CA trust, startup."""

import re
import time

import pytest

from ..unit.pinfile import read_pins
from .imagetools import CA_BUNDLE, CA_ENV, REPO, Box, error_lines, pem_bodies

pytestmark = pytest.mark.integration

HUB_DOCKERFILE = (REPO / "images/hub/Dockerfile").read_text()


def test_jupyterhub_version_is_the_pinned_one(hub):
    assert hub.check("jupyterhub", "--version") == read_pins(REPO / "images/hub/requirements.txt")["jupyterhub"].version


def test_configurable_http_proxy_is_the_pinned_one(hub):
    want = re.search(r"^ARG CHP_VERSION=(\S+)", HUB_DOCKERFILE, re.M).group(1)
    assert hub.check("configurable-http-proxy", "--version") == want


def test_hub_packages_import(hub):
    modules = "dockerspawner, nativeauthenticator, jupyterhub_idle_culler, docker, yaml, pynvml"
    hub.check("python3", "-c", f"import {modules}")
    hub.check("python3", "-c", "import spawner; from spawner import GPUDockerSpawner")
    names = hub.check(
        "python3",
        "-c",
        (
            "from importlib.metadata import entry_points;"
            "print(' '.join(entry_points(group='jupyterhub.spawners').names))"
        ),
    )
    assert "gpudocker" in names.split()
    hub.check("pip", "check")


def test_layout_and_user(hub, hub_image):
    cfg = hub_image.attrs["Config"]
    assert cfg["WorkingDir"] == "/srv/jupyterhub"
    assert cfg["Cmd"] == ["jupyterhub", "-f", "/srv/jupyterhub/jupyterhub_config.py"]
    assert cfg["Entrypoint"][0] == "tini"
    assert hub.check("cat", "/proc/1/comm") == "tini"
    assert hub.check("id", "-u") == "0", "the hub runs as root (Docker socket)"
    assert hub.check("stat", "-c", "%a", "/srv/jupyterhub/data") == "700"
    assert hub.read("/srv/jupyterhub/jupyterhub_config.py") == (REPO / "jupyterhub_config.py").read_text().strip()
    shipped = set(hub.check("ls", "-A", "/srv/jupyterhub/jupyterhub_config.d").split())
    assert shipped == {p.name for p in (REPO / "jupyterhub_config.d").iterdir()}
    assert "/hub/health" in " ".join(cfg["Healthcheck"]["Test"])


def test_extra_ca_in_trust_store_and_env(hub, extra_ca):
    trusted = pem_bodies(hub.read(CA_BUNDLE))
    missing = pem_bodies(extra_ca) - trusted
    assert not missing, f"{len(missing)} certificate(s) of .build/extra-ca.crt not in {CA_BUNDLE}"
    for var in CA_ENV:
        assert hub.check("printenv", var) == CA_BUNDLE


@pytest.fixture
def running_hub(docker_client, hub_image):
    # A real start: the proxy routes to the hub at 127.0.0.1 (no compose network).
    box = Box(docker_client, hub_image.tags[0], command=None, environment={"GPUHUB_HUB_CONNECT_HOST": "127.0.0.1"})
    yield box
    print(f"--- logs of {box.container.name} ---\n{box.logs()}")  # shown on failure
    box.remove()


def test_hub_starts_and_its_healthcheck_passes(running_hub, hub_image):
    running_hub.wait_for_log("JupyterHub is now running", timeout=90)
    # Run the image's own HEALTHCHECK command until it passes (Docker's first
    # probe would come only after --interval).
    test = hub_image.attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    deadline = time.monotonic() + 60
    while (rc := running_hub.run(*test[1:], timeout=10)[0]) != 0 and time.monotonic() < deadline:
        time.sleep(2)
    assert rc == 0, f"HEALTHCHECK {test[1:]} keeps failing:\n{running_hub.logs()}"
    assert not error_lines(running_hub.logs()), running_hub.logs()
