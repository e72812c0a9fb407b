"""The production single-user image's conda side, end to end (`make test-conda`).

Needs a reachable conda channel (skipped otherwise, see conftest.py) and a
Docker engine: builds gpuhub/singleuser, then checks inside it that
- nb_conda_kernels is enabled and lists exactly one kernel per kernels/*.yml,
  named by the configured name_format, and no kernel of the base env;
- the Jupyter server itself shows the same kernels, and "New notebook"
  (POST /api/kernels {}) starts the team kernel the production settings name;
- the kernel names are the ones spawner/condakernels.py derives;
- each team env's kernel starts and imports its main package;
- a personal env made with `conda create` in a terminal lands on the home
  volume, survives the container, shows up as a kernel in the next one, and
  `conda env export` can save it into the workspace;
- a personal env named like a team env takes its name, and the server logs a
  WARNING at start that says so.
"""

import json

import pytest
import yaml

from spawner.condakernels import TEAM_ENVS_DIR, env_names, kernel_name, shadowed_team_envs, shadowing_message

from ..images.imagetools import IRI_GRAMMAR_PROBE, LAB_SESSION, LAB_SESSION_STEPS
from .condatools import (
    DEFAULT_KERNEL,
    REPO,
    SERVER_CONFIG,
    expected_display_name,
    load_specs,
    pinned_version,
    script,
)

pytestmark = pytest.mark.conda

BASE_PREFIX = "/opt/conda"
LIST = ["python", "-m", "nb_conda_kernels", "list", "--json", f"--JupyterApp.config_file={SERVER_CONFIG}"]
CONDA_FAILURE = "couldn't call conda"  # nb_conda_kernels' only trace of a missing conda


def result_line(out):
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{out}"
    return json.loads(lines[-1][len("RESULT ") :])


def conda_kernels(box):
    """{env name: (kernel name, display name, env path)} as the server's manager sees them."""
    out, err = box.check(*LIST, timeout=300)
    # Without a working conda the manager lists no conda kernel and only logs:
    # make that visible instead of comparing empty lists.
    assert CONDA_FAILURE not in err, f"nb_conda_kernels could not run conda:\n{err}"
    found = {}
    for name, entry in json.loads(out)["kernelspecs"].items():
        metadata = entry["spec"].get("metadata", {})
        assert "conda_env_name" in metadata, f"non-conda kernel {name!r} listed: {entry}"
        env = metadata["conda_env_name"]
        assert env not in found, f"two kernels for env {env!r}: {found[env][0]}, {name}"
        found[env] = (name, entry["spec"]["display_name"], metadata["conda_env_path"])
    return found


def test_nb_conda_kernels_is_enabled(box):
    # What the image relies on: the conda package's own post-link step enables
    # the manager class; kernels/jupyter/jupyter_server_config.json only sets options.
    # (The server test below is the strict check: without the class it shows
    # only the base env's python3 kernel.)
    out, err = box.check("python", "-m", "nb_conda_kernels.install", "--status")
    status = (out + err).lower()
    assert "enabled" in status and "disabled" not in status, out + err


def test_one_kernel_per_team_spec(box):
    kernels = conda_kernels(box)
    assert set(kernels) == set(load_specs()), kernels
    for env, (name, display_name, path) in kernels.items():
        assert name == kernel_name(env), "the name spawner/condakernels.py derives"
        assert display_name == expected_display_name(env)
        assert path == f"{BASE_PREFIX}/envs/{env}"


def server_api(box, *requests):
    """[{status, body}] of `requests` sent to a `jupyter server` in `box`, and its log."""
    out, err = box.check("python", "-c", script("server_api.py"), "240", json.dumps(requests), timeout=300)
    responses = result_line(out)
    assert responses is not None, f"the server never answered:\n{err}"
    assert CONDA_FAILURE not in err, err
    return responses, err


def test_server_shows_the_same_kernels(box):
    [specs], log = server_api(box, ["GET", "/api/kernelspecs", None])
    shown = sorted(spec["spec"]["display_name"] for spec in specs["body"]["kernelspecs"].values())
    assert shown == sorted(expected_display_name(env) for env in load_specs()), log


def test_new_notebook_starts_the_team_default_kernel(box):
    # Jupyter's own default, python3, is hidden by conda_only: POST /api/kernels {}
    # answered 500 until the production settings named a team kernel.
    specs, started = server_api(box, ["GET", "/api/kernelspecs", None], ["POST", "/api/kernels", {}])[0]
    assert specs["body"]["default"] == DEFAULT_KERNEL
    metadata = specs["body"]["kernelspecs"][DEFAULT_KERNEL]["spec"]["metadata"]
    assert metadata["conda_env_path"] == f"{TEAM_ENVS_DIR}/python310"
    assert started["status"] == 201, started
    assert started["body"]["name"] == DEFAULT_KERNEL


def check_pytorch(spec, stdout):
    torch_version, cuda = stdout.split()
    assert torch_version.split("+")[0] == pinned_version(spec, "pytorch")
    assert cuda.startswith("12."), f"not a CUDA build of torch: torch.version.cuda={cuda}"


def check_python310(spec, stdout):
    assert stdout.split() == [pinned_version(spec, "numpy")]


def check_any(spec, stdout):
    assert stdout.startswith("3.10.")


TEAM_CHECKS = {  # env -> (code run in its kernel, check of the kernel's stdout)
    "pytorch": ("import torch; print(torch.__version__, torch.version.cuda)", check_pytorch),
    "python310": ("import numpy; print(numpy.__version__)", check_python310),
}


@pytest.mark.parametrize("env", sorted(load_specs()))
def test_team_kernel_runs(box, env):
    code, check = TEAM_CHECKS.get(env, ("import sys; print(sys.version)", check_any))
    out, err = box.check("python", "-c", script("kernel_check.py"), env, code, "300", timeout=420)
    result = result_line(out)
    assert result["status"] == "ok" and not result["errors"], f"{result}\n{err}"
    check(load_specs()[env], result["stdout"])


def test_server_start_builds_no_iri_grammars(box):
    # As in the stand-in: rfc3987-syntax is left out of the base env.
    out, _ = box.check("python", "-c", IRI_GRAMMAR_PROBE)
    assert out.strip() == "[]"


LAB_PORT = 18889
WAIT_FOR_LAB = (
    "import time, urllib.request as r\n"
    "for _ in range(480):\n"
    "    try:\n"
    f"        r.build_opener(r.ProxyHandler({{}})).open('http://127.0.0.1:{LAB_PORT}/api', timeout=2); break\n"
    "    except OSError: time.sleep(0.5)\n"
)


def test_file_kernel_and_terminal_work_in_lab(box):
    # The stand-in's session check (tests/images/scripts), here on JupyterLab
    # with the production settings and the team default kernel.
    lab = f"jupyter lab --no-browser --ip=127.0.0.1 --port={LAB_PORT} --IdentityProvider.token=lab-session"
    run = f'{lab} >/tmp/lab.log 2>&1 & python -c "$1" && python -c "$2" http://127.0.0.1:{LAB_PORT} lab-session "$3"'
    out, _ = box.check("bash", "-c", run, "_", WAIT_FOR_LAB, LAB_SESSION, DEFAULT_KERNEL, timeout=420)
    assert out.splitlines() == [step.format(kernel=DEFAULT_KERNEL) for step in LAB_SESSION_STEPS], out


def test_personal_env_persists_on_the_home_volume(boxes, home_volume):
    personal_dir = yaml.safe_load((REPO / "kernels" / "condarc").read_text())["envs_dirs"][0]

    first = boxes(home_volume)
    first.check("conda", "create", "-y", "-n", "myexp", "python=3.10", "ipykernel", timeout=1800)
    first.check("test", "-x", f"{personal_dir}/myexp/bin/python")
    first.remove()

    second = boxes(home_volume)
    kernels = conda_kernels(second)
    assert "myexp" in kernels, f"personal env missing in a new container: {sorted(kernels)}"
    _, display_name, path = kernels["myexp"]
    assert path == f"{personal_dir}/myexp"
    assert display_name == expected_display_name("myexp")
    assert set(load_specs()) <= set(kernels), "the team envs are listed next to personal ones"

    second.check(
        "bash",
        "-c",
        "mkdir -p /home/jovyan/myexp && conda env export -n myexp > /home/jovyan/myexp/environment.yml",
        timeout=300,
    )
    out, _ = second.check("cat", "/home/jovyan/myexp/environment.yml")
    exported = yaml.safe_load(out)
    assert exported["name"] == "myexp"
    assert any(isinstance(d, str) and d.startswith("ipykernel=") for d in exported["dependencies"])


def test_personal_env_named_like_a_team_env_is_warned_about(boxes, home_volume):
    personal_dir = yaml.safe_load((REPO / "kernels" / "condarc").read_text())["envs_dirs"][0]
    box = boxes(home_volume)
    personal = f"{personal_dir}/python310"
    # -p: `-n python310` would name the team env itself (conda looks names up in
    # envs_dirs). An env without ipykernel is enough to take the name, and cheap.
    box.check("conda", "create", "-y", "-p", personal, timeout=600)
    team = [f"{TEAM_ENVS_DIR}/{env}" for env in load_specs()]

    kernels = conda_kernels(box)
    predicted = env_names([*team, personal])
    assert {env: path for env, (_, _, path) in kernels.items()} == {
        env: path
        for env, path in predicted.items()
        if path != personal  # it has no kernel
    }
    assert kernels["conda-python310"][0] == "conda-env-conda-python310-py"

    [shadow] = shadowed_team_envs(predicted)
    [specs], log = server_api(box, ["GET", "/api/kernelspecs", None])
    assert DEFAULT_KERNEL not in specs["body"]["kernelspecs"], "the default kernel's name is taken"
    warnings = [line for line in log.splitlines() if line.startswith("[W ")]
    assert any(line.endswith(shadowing_message(shadow, DEFAULT_KERNEL)) for line in warnings), log
