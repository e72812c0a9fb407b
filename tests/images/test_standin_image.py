"""Run the stand-in single-user image: user, entrypoint, versions, system config, CA."""

import pytest
from packaging.utils import canonicalize_name

from ..unit.pinfile import read_pins
from .imagetools import (
    CA_BUNDLE,
    CA_ENV,
    IRI_GRAMMAR_PROBE,
    LAB_SESSION,
    LAB_SESSION_STEPS,
    REPO,
    Box,
    error_lines,
    pem_bodies,
)

pytestmark = pytest.mark.integration


def test_marked_as_stand_in(standin_image):
    labels = standin_image.attrs["Config"]["Labels"]
    assert labels.get("io.gpuhub.image.stand-in") == "true"
    assert "STAND-IN" in labels["org.opencontainers.image.description"]


def test_user_entrypoint_and_command(standin, standin_image):
    cfg = standin_image.attrs["Config"]
    assert cfg["User"] == "1000"
    assert cfg["WorkingDir"] == "/home/jovyan"
    assert cfg["Entrypoint"][0] == "tini"
    assert cfg["Cmd"] == ["jupyterhub-singleuser"]
    assert standin.check("id", "-u") == "1000"
    assert standin.check("id", "-g") == "100"
    assert standin.check("id", "-un") == "jovyan"
    assert standin.check("cat", "/proc/1/comm") == "tini"


def test_home_is_the_volume_mount_point(standin):
    assert standin.check("stat", "-c", "%u %g", "/home/jovyan") == "1000 100"
    assert standin.check("pwd") == "/home/jovyan"
    # system-wide config never lives in the home, which the user's volume hides
    home = standin.check("ls", "-A", "/home/jovyan").split()
    assert not {".jupyter", ".condarc", ".local"} & set(home), home


def test_no_sudo(standin):
    rc, out, _ = standin.run("sh", "-c", "command -v sudo")
    assert rc != 0, f"sudo is installed: {out}"


def test_singleuser_matches_the_hub(standin, hub):
    assert standin.check("jupyterhub-singleuser", "--version") == hub.check("jupyterhub", "--version")


def test_jupyter_stack_is_the_pinned_one(standin):
    # The advisory floors (tests/unit/test_pins.py) hold for what is installed.
    pins = read_pins(REPO / "images/singleuser-standin/requirements.txt")
    script = "import sys, importlib.metadata as m; print(*(m.version(n) for n in sys.argv[1:]))"
    names = ["jupyterhub", "jupyterlab", "jupyter_server", "ipykernel"]
    installed = standin.check("python3", "-c", script, *names).split()
    assert dict(zip(names, installed, strict=True)) == {n: pins[canonicalize_name(n)].version for n in names}
    assert standin.check("jupyter", "lab", "--version") == pins["jupyterlab"].version


def test_kernel(standin):
    assert "python3" in standin.check("jupyter", "kernelspec", "list")


@pytest.mark.parametrize(
    ("repo_file", "image_file"),
    [
        ("kernels/jupyter/jupyter_server_config.json", "/etc/jupyter/jupyter_server_config.json"),
        ("kernels/condarc", "/etc/conda/.condarc"),
        ("kernels/jupyter/jupyter_lab_config.json", "/etc/jupyter/jupyter_lab_config.json"),
    ],
)
def test_system_config_is_the_repos(standin, repo_file, image_file):
    want = (REPO / repo_file).read_text().strip()
    assert standin.read(image_file) == want, f"{image_file} differs from {repo_file}: rebuild (`make images`)"


def test_extra_ca_in_trust_store_and_env(standin, extra_ca):
    missing = pem_bodies(extra_ca) - pem_bodies(standin.read(CA_BUNDLE))
    assert not missing, f"{len(missing)} certificate(s) of .build/extra-ca.crt not in {CA_BUNDLE}"
    for var in CA_ENV:
        assert standin.check("printenv", var) == CA_BUNDLE


LAB_TOKEN = "gpuhub-test-img-token"  # the server only listens inside its container


@pytest.fixture
def lab(docker_client, standin_image):
    box = Box(
        docker_client,
        standin_image.tags[0],
        command=[
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            "--port=8888",
            f"--IdentityProvider.token={LAB_TOKEN}",
        ],
    )
    yield box
    print(f"--- logs of {box.container.name} ---\n{box.logs()}")  # shown on failure
    box.remove()


def test_server_starts_with_the_system_config(lab):
    lab.wait_for_log("is running at", timeout=90)
    assert not error_lines(lab.logs()), lab.logs()
    # the sshd config made the workspace's host key: Ed25519, quick to make (issue 13)
    assert lab.check("ssh-keygen", "-l", "-f", "/home/jovyan/.ssh/jupyter_sshd_hostkey").endswith("(ED25519)")


def test_new_notebook_starts_python3(lab):
    # The stand-in has no conda kernels and keeps Jupyter's default kernel: the
    # production-only default (kernels/jupyter/production) must not reach it.
    lab.wait_for_log("is running at", timeout=90)
    post = (
        "import json, urllib.request as r;"
        "q = r.Request('http://127.0.0.1:8888/api/kernels', data=b'{}', method='POST',"
        f" headers={{'Authorization': 'token {LAB_TOKEN}'}});"
        "a = r.build_opener(r.ProxyHandler({})).open(q, timeout=60);"
        "print(a.status, json.load(a)['name'])"
    )
    assert lab.check("python3", "-c", post).split() == ["201", "python3"]
    assert lab.run("test", "-e", "/etc/jupyter/jupyter_server_config.py")[0] != 0


def test_file_kernel_and_terminal_work(lab):
    lab.wait_for_log("is running at", timeout=90)
    out = lab.check("python3", "-c", LAB_SESSION, "http://127.0.0.1:8888", LAB_TOKEN, timeout=120)
    assert out.splitlines() == [step.format(kernel="python3") for step in LAB_SESSION_STEPS], out
    assert not error_lines(lab.logs()), lab.logs()


EXTENSIONS_PROBE = (
    "import json, re, sys, urllib.request as r;"
    "o = r.build_opener(r.ProxyHandler({}));"
    "get = lambda path: o.open(f'http://127.0.0.1:8888{path}?token={sys.argv[1]}', timeout=60).read().decode();"
    "print(json.loads(re.search(r'\"extensionManager\": (\\{[^}]*\\})', get('/lab')).group(1))['name']);"
    "print(*sorted(e['name'] for e in json.loads(get('/lab/api/extensions'))))"
)


def test_extension_manager_lists_extensions_and_offers_no_installs(lab):
    # kernels/jupyter/jupyter_lab_config.json: uid 1000 cannot write the server's
    # environment, so a PyPI install from the UI could only fail.
    lab.wait_for_log("is running at", timeout=90)
    manager, listed = lab.check("python3", "-c", EXTENSIONS_PROBE, LAB_TOKEN).splitlines()
    assert manager == "read-only"
    assert {"@jupyter-server/resource-usage", "jupyterlab-nvdashboard"} <= set(listed.split())


def test_server_start_builds_no_iri_grammars(standin):
    # rfc3987-syntax, via jsonschema[format-nongpl], is left out of the image;
    # the rest of the stack stays consistent without it.
    assert standin.check("python3", "-c", IRI_GRAMMAR_PROBE) == "[]"
    standin.check("pip", "check")
