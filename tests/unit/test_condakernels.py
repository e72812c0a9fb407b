"""nb_conda_kernels' names (spawner/condakernels.py), the shadowing check built
on them, and the production-only server settings that name the default kernel
(kernels/jupyter/production/)."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from spawner.condakernels import (
    ROOT_PREFIX,
    TEAM_ENVS_DIR,
    Shadowing,
    _load_jupyter_server_extension,
    env_names,
    kernel_name,
    shadowed_team_envs,
    shadowing_message,
)

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "kernels/jupyter/production"
PERSONAL_DIR = yaml.safe_load((REPO / "kernels/condarc").read_text())["envs_dirs"][0]
TEAM_SPECS = sorted(p.stem for p in (REPO / "kernels").glob("*.yml"))
TEAM = [f"{TEAM_ENVS_DIR}/{name}" for name in TEAM_SPECS]


def test_team_envs_keep_their_names():
    assert env_names(TEAM) == {name: f"{TEAM_ENVS_DIR}/{name}" for name in TEAM_SPECS}


def test_a_personal_env_with_a_team_name_takes_it():
    # /home/... sorts before /opt/conda/envs/...: the personal env is named first.
    names = env_names([*TEAM, f"{PERSONAL_DIR}/python310", f"{PERSONAL_DIR}/myexp"])
    assert names["python310"] == f"{PERSONAL_DIR}/python310"
    assert names["conda-python310"] == f"{TEAM_ENVS_DIR}/python310"
    assert names["myexp"] == f"{PERSONAL_DIR}/myexp"
    assert names["pytorch"] == f"{TEAM_ENVS_DIR}/pytorch"


def test_the_order_given_does_not_matter():
    paths = [*TEAM, f"{PERSONAL_DIR}/python310"]
    assert env_names(reversed(paths)) == env_names(paths)


def test_an_env_in_another_envs_folder_gets_its_parents_name():
    # Why the personal folder is not called "envs" (kernels/condarc).
    names = env_names([*TEAM, "/home/jovyan/.conda/envs/python310", "/home/jovyan/my-envs/x"])
    assert names[".conda-python310"] == "/home/jovyan/.conda/envs/python310"
    assert names["python310"] == f"{TEAM_ENVS_DIR}/python310"
    assert names["x"] == "/home/jovyan/my-envs/x"


def test_a_name_still_taken_gets_a_counter():
    names = env_names(["/a/x", "/b/x", "/c/x"])
    assert names == {"x": "/a/x", "x-2": "/b/x", "x-3": "/c/x"}


@pytest.mark.parametrize(
    ("env", "kernel"),
    [
        ("python310", "conda-env-python310-py"),
        ("conda-python310", "conda-env-conda-python310-py"),
        (".conda-myexp", "conda-env-.conda-myexp-py"),
        ("café exp", "conda-env-cafe_exp-py"),
    ],
)
def test_kernel_name(env, kernel):
    assert kernel_name(env) == kernel


def test_no_shadowing_without_a_name_clash():
    names = env_names([*TEAM, f"{PERSONAL_DIR}/myexp", "/home/jovyan/.conda/envs/python310"])
    assert shadowed_team_envs(names) == []


def test_a_personal_env_named_like_a_team_env_shadows_it():
    personal = f"{PERSONAL_DIR}/python310"
    assert shadowed_team_envs(env_names([*TEAM, personal])) == [
        Shadowing("python310", f"{TEAM_ENVS_DIR}/python310", "conda-python310", personal)
    ]


def test_the_message_says_what_breaks_and_what_to_do():
    personal = f"{PERSONAL_DIR}/python310"
    [shadow] = shadowed_team_envs(env_names([*TEAM, personal]))
    message = shadowing_message(shadow, default_kernel="conda-env-python310-py")
    assert f"conda env {personal} has the name of the team env 'python310'" in message
    assert 'conda-env-python310-py, the default kernel that "New notebook" starts' in message
    assert "listed as 'conda-python310' (kernel conda-env-conda-python310-py)" in message
    assert message.endswith(f"conda rename -p {personal} NEW_NAME")
    assert "default kernel" not in shadowing_message(shadow, default_kernel="conda-env-pytorch-py")


# --- the server extension (production image) -----------------------------------


class _Stub:
    """The two attributes of a ServerApp the extension reads, and its log."""

    def __init__(self, kernel_spec_manager, records):
        self.kernel_spec_manager = kernel_spec_manager
        self.kernel_manager = type("KM", (), {"default_kernel_name": "conda-env-python310-py"})()
        self.log = logging.getLogger("test-condakernels")
        self.log.addHandler(records)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append((record.levelname, record.getMessage()))


def test_extension_warns_about_each_shadowed_team_env():
    personal = f"{PERSONAL_DIR}/python310"
    manager = type("CKSM", (), {"_all_envs": lambda self: env_names([*TEAM, personal])})()
    records = _Records()
    _load_jupyter_server_extension(_Stub(manager, records))
    assert records.lines == [
        ("WARNING", shadowing_message(shadowed_team_envs(env_names([*TEAM, personal]))[0], "conda-env-python310-py"))
    ]


def test_extension_says_when_it_cannot_check():
    records = _Records()
    _load_jupyter_server_extension(_Stub(object(), records))
    [(level, line)] = records.lines
    assert level == "WARNING" and "not nb_conda_kernels' manager" in line


def test_module_runs_as_a_lone_stdlib_file(tmp_path):
    # As in the production image: copied alone into site-packages under another
    # name. -S: no site-packages at all, so only the standard library is there.
    (tmp_path / "gpuhub_condakernels.py").write_text((REPO / "spawner/condakernels.py").read_text())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import gpuhub_condakernels as m; "
        "print(m.kernel_name('python310'), callable(m._load_jupyter_server_extension))"
    )
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["conda-env-python310-py", "True"]


# --- kernels/jupyter/production -------------------------------------------------


@pytest.fixture(scope="module")
def production_config():
    return PyFileConfigLoader("jupyter_server_config.py", path=str(PRODUCTION)).load_config()


def test_default_kernel_is_the_python310_team_kernel(production_config):
    spec = yaml.safe_load((REPO / "kernels/python310.yml").read_text())
    assert any(str(d).startswith("ipykernel=") for d in spec["dependencies"]), "python310 has a kernel"
    team_names = env_names(TEAM)
    assert team_names["python310"] == f"{ROOT_PREFIX}/envs/python310"
    assert production_config.MultiKernelManager.default_kernel_name == kernel_name("python310")


def test_production_config_repeats_nothing_of_the_shared_one(production_config):
    shared = json.loads((REPO / "kernels/jupyter/jupyter_server_config.json").read_text())
    assert set(production_config) == {"MultiKernelManager"}
    assert not set(production_config) & set(shared)


def test_production_enables_the_extension():
    enabled = json.loads((PRODUCTION / "gpuhub_condakernels.json").read_text())
    assert enabled == {"ServerApp": {"jpserver_extensions": {"gpuhub_condakernels": True}}}


@pytest.mark.parametrize("doc", ["README.md", "kernels/README.md"])
def test_docs_name_the_default_kernel_and_no_dash_two(doc, production_config):
    # The docs said a same-named personal env shows as <name>-2: nb_conda_kernels
    # gives it the team env's name instead (test_a_personal_env_with_a_team_name_takes_it).
    text = (REPO / doc).read_text()
    assert production_config.MultiKernelManager.default_kernel_name in text
    assert "conda-<name>" in text and "<name>-2" not in text
