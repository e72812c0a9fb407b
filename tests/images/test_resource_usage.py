"""The stand-in image carries jupyter-resource-usage and jupyterlab-nvdashboard (issue 11),
enabled, and a running server answers resource usage at /api/metrics/v1."""

import json

import pytest

from .conftest import _box

pytestmark = pytest.mark.integration

TOKEN = "resource-usage-check"
# Asks the server in the container for its metrics, as JupyterLab's status bar does.
FETCH = f"""
import json, time, urllib.request
req = urllib.request.Request("http://127.0.0.1:8888/api/metrics/v1", headers={{"Authorization": "token {TOKEN}"}})
for _ in range(60):
    try:
        print(urllib.request.urlopen(req, timeout=5).read().decode()); break
    except OSError:
        time.sleep(1)
"""


@pytest.fixture(scope="module")
def lab(docker_client, standin_image):
    command = ["jupyter", "lab", "--ip=127.0.0.1", "--port=8888", "--no-browser", f"--IdentityProvider.token={TOKEN}"]
    yield from _box(docker_client, standin_image, command=command)


def test_both_extensions_are_installed_and_enabled(standin):
    rc, out, err = standin.run("jupyter", "server", "extension", "list")  # written to stderr
    assert rc == 0, err
    listing = out + err
    line = next((line for line in listing.splitlines() if line.split()[:1] == ["jupyter_resource_usage"]), "")
    assert "enabled" in line, f"jupyter_resource_usage not enabled:\n{listing}"
    lab = standin.run("jupyter", "labextension", "list")
    labs = lab[1] + lab[2]
    for name in ("@jupyter-server/resource-usage", "jupyterlab-nvdashboard"):
        line = next((line for line in labs.splitlines() if name in line), "")
        assert "enabled" in line and "OK" in line, f"{name} not enabled:\n{labs}"


def test_a_running_server_answers_resource_usage(lab):
    metrics = json.loads(lab.check("python3", "-c", FETCH, timeout=90))
    assert metrics["rss"] > 0, metrics
    assert "limits" in metrics
