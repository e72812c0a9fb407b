"""Static checks of the Dockerfiles and their pins (no Docker needed)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from .pinfile import read_pins

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(REPO.glob("images/*/Dockerfile"))
PRODUCTION = REPO / "images/singleuser/Dockerfile"
SHELL = ["/bin/bash", "-o", "pipefail", "-c"]


def instructions(path):
    """(INSTRUCTION, arguments) of a Dockerfile: continuations joined, comments dropped."""
    found, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, args = (pending + line).partition(" ")
        found.append((word.upper(), args.strip()))
        pending = ""
    return found


def test_all_images_present():
    assert {p.parent.name for p in DOCKERFILES} >= {"hub", "singleuser-standin", "singleuser"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_image_arg_shell_and_labels(path):
    steps = instructions(path)
    first_from = next(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert any(w == "ARG" and a.startswith("BASE_IMAGE=") for w, a in steps[:first_from]), (
        "ARG BASE_IMAGE=<default> must come before the first FROM"
    )
    assert re.match(r"\$\{?BASE_IMAGE\}?(\s|$)", steps[first_from][1])
    shells = [i for i, (w, _) in enumerate(steps) if w == "SHELL"]
    first_run = next(i for i, (w, _) in enumerate(steps) if w == "RUN")
    assert shells and shells[0] < first_run, "SHELL must precede the first RUN"
    assert json.loads(steps[shells[0]][1]) == SHELL
    labels = " ".join(a for w, a in steps if w == "LABEL")
    assert "org.opencontainers.image.title=" in labels


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_context_paths_pass_the_dockerignore(path):
    kept = {line[1:].strip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for word, args in instructions(path):
        if word in ("COPY", "ADD") and "--from=" not in args:
            for src in args.split()[:-1]:
                assert src.split("/")[0] in kept, f"{src} is excluded by .dockerignore"


@pytest.mark.parametrize("name", ["singleuser-standin", "singleuser"])
def test_singleuser_user_entrypoint_and_config(name):
    steps = instructions(REPO / "images" / name / "Dockerfile")
    last = {w: a for w, a in steps}
    assert last["USER"] == "1000"
    assert last["WORKDIR"] == "/home/jovyan"
    assert json.loads(last["ENTRYPOINT"])[0] == "tini"
    assert json.loads(last["CMD"]) == ["jupyterhub-singleuser"]
    copies = [a.split() for w, a in steps if w == "COPY"]
    assert ["kernels/jupyter/jupyter_server_config.json", "/etc/jupyter/jupyter_server_config.json"] in copies
    assert ["kernels/condarc", "/etc/conda/.condarc"] in copies
    assert ["kernels/jupyter/jupyter_lab_config.json", "/etc/jupyter/jupyter_lab_config.json"] in copies


def test_production_only_server_settings_stay_out_of_the_stand_in():
    def copies(name):
        return {tuple(a.split()) for w, a in instructions(REPO / "images" / name / "Dockerfile") if w == "COPY"}

    production = {
        ("kernels/jupyter/production/jupyter_server_config.py", "/etc/jupyter/jupyter_server_config.py"),
        (
            "kernels/jupyter/production/gpuhub_condakernels.json",
            "/etc/jupyter/jupyter_server_config.d/gpuhub_condakernels.json",
        ),
    }
    assert {f"kernels/jupyter/production/{p.name}" for p in (REPO / "kernels/jupyter/production").iterdir()} == {
        src for src, _ in production
    }
    assert production <= copies("singleuser")
    assert not any(src.startswith("kernels/jupyter/production") for src, *_ in copies("singleuser-standin"))


def test_production_installs_the_extension_its_settings_enable():
    # The module name the settings enable is the name the file is installed as.
    steps = instructions(PRODUCTION)
    assert ["spawner/condakernels.py", "/tmp/condakernels.py"] in [a.split() for w, a in steps if w == "COPY"]
    [install] = [a for w, a in steps if w == "RUN" and "/tmp/condakernels.py" in a]
    enabled = json.loads((REPO / "kernels/jupyter/production/gpuhub_condakernels.json").read_text())
    [module] = enabled["ServerApp"]["jpserver_extensions"]
    assert f'"$site/{module}.py"' in install and f"import {module}" in install


def test_production_checks_the_miniconda_sha256():
    text = PRODUCTION.read_text()
    runs = " ".join(a for w, a in instructions(PRODUCTION) if w == "RUN")
    assert re.search(r"sha256sum (-c|--check)", runs)
    assert re.search(r"^ARG MINICONDA_SHA256_X86_64=[0-9a-f]{64}$", text, re.M)


def test_production_has_a_copy_run_pair_per_kernel_spec():
    steps = instructions(PRODUCTION)
    specs = sorted(p.name for p in (REPO / "kernels").glob("*.yml"))
    assert specs, "no kernels/*.yml"
    copied = []
    for i, (word, args) in enumerate(steps):
        m = re.fullmatch(r"kernels/([\w.-]+\.yml)\s+(\S+)", args) if word == "COPY" else None
        if m:
            copied.append(m.group(1))
            nxt_word, nxt_args = steps[i + 1]
            assert nxt_word == "RUN" and m.group(2) in nxt_args, f"COPY {args} is not followed by its RUN"
    assert sorted(copied) == specs, "every kernels/*.yml needs its own COPY + RUN pair, and only those"


def test_production_checks_specs_before_creating_envs():
    runs = [a for w, a in instructions(PRODUCTION) if w == "RUN"]
    check = next(i for i, a in enumerate(runs) if "/tmp/envspec.py /tmp/kernels/*.yml" in a)
    first_env = next(i for i, a in enumerate(runs) if "conda env create" in a)
    assert check < first_env


def test_jupyterhub_version_is_the_same_everywhere():
    hub = read_pins(REPO / "images/hub/requirements.txt")["jupyterhub"].version
    assert read_pins(REPO / "images/singleuser-standin/requirements.txt")["jupyterhub"].version == hub
    assert read_pins(REPO / "images/singleuser/base-environment.yml")["jupyterhub-singleuser"].version == hub


@pytest.mark.parametrize(
    "path",
    ["images/hub/requirements.txt", "images/singleuser-standin/requirements.txt", "images/sshd/requirements.txt"],
)
def test_requirements_are_exact_pins(path):
    assert read_pins(REPO / path), f"{path} pins nothing"  # read strictly: any other line raises


def test_base_environment_is_fully_pinned():
    path = REPO / "images/singleuser/base-environment.yml"
    pins = read_pins(path)
    assert pins["python"].version == "3.10"
    assert all(pin.op == "=" for pin in pins.values()), "conda pins are name=version"
    assert len(pins) == len(yaml.safe_load(path.read_text())["dependencies"]), "a dependency is not pinned"


@pytest.mark.parametrize("name", ["singleuser-standin", "singleuser"])
def test_both_singleuser_images_install_the_hardened_sshd(name):
    steps = instructions(REPO / "images" / name / "Dockerfile")
    copies = [a.split() for w, a in steps if w == "COPY"]
    assert ["images/sshd/jupyter_server_config.py", "/usr/local/etc/jupyter/jupyter_server_config.py"] in copies
    assert ["images/sshd/install.sh", "images/sshd/requirements.txt", "/tmp/sshd/"] in copies
    assert "bash /tmp/sshd/install.sh" in " ".join(a for w, a in steps if w == "RUN")
    # the one install script both images run
    script = (REPO / "images/sshd/install.sh").read_text()
    assert "apt-get install -y --no-install-recommends openssh-server" in script
    assert 'pip install -r "$(dirname "$0")/requirements.txt"' in script
    assert "chmod u-s /usr/lib/openssh/ssh-keysign" in script and "rm -f /etc/ssh/ssh_host_*" in script
