"""The team env spec checker (spawner/envspec.py), the real specs in kernels/,
and the two system-wide config files that go with them (kernels/condarc,
kernels/jupyter/jupyter_server_config.json)."""

import ast
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path, PurePosixPath

import pytest
import yaml

from spawner.envspec import SpecError, check_spec, check_specs

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"
SPECS = sorted(KERNELS.glob("*.yml"))
ENVSPEC = ROOT / "spawner" / "envspec.py"
HOME = PurePosixPath("/home/jovyan")

GOOD = """\
name: {name}
channels:
  - conda-forge
dependencies:
  - python=3.10
  - ipykernel=6.29.5
  - numpy=1.26.4
"""


def write_spec(tmp_path, text, stem="good"):
    path = tmp_path / f"{stem}.yml"
    path.write_text(textwrap.dedent(text))
    return path


def good_with(tmp_path, old, new, stem="good"):
    text = GOOD.format(name=stem)
    assert old in text
    return write_spec(tmp_path, text.replace(old, new), stem)


# --- the real specs ---------------------------------------------------------


def test_real_specs_exist():
    assert {p.stem for p in SPECS} >= {"pytorch", "python310"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_real_spec_passes(path):
    spec = check_spec(path)
    assert spec["name"] == path.stem


def test_real_specs_pass_together():
    assert set(check_specs(SPECS)) == {p.stem for p in SPECS}


def test_pytorch_spec_has_the_gpu_stack():
    deps = check_spec(KERNELS / "pytorch.yml")["dependencies"]
    names = {re.split(r"==?", d)[0] for d in deps if isinstance(d, str)}
    assert {"pytorch", "pytorch-gpu", "torchvision", "torchaudio", "cuda-version", "numpy", "matplotlib-base"} <= names


# --- bad specs: each fails with a message naming the file and the problem ---

BAD_CASES = {
    "invalid-yaml": ("name: [unclosed\n", "not valid YAML"),
    "not-a-mapping": ("- python=3.10\n- ipykernel=6.29.5\n", "must be a YAML mapping"),
    "empty-file": ("", "must be a YAML mapping"),
    "prefix-key": (GOOD.format(name="bad") + "prefix: /opt/conda/envs/bad\n", "must not choose where it is installed"),
    "unknown-key": (GOOD.format(name="bad") + "variables:\n  FOO: bar\n", "unknown top-level key(s) variables"),
    "no-name": (GOOD.format(name="bad").replace("name: bad\n", ""), "has no 'name'"),
    "no-channels": ("name: bad\ndependencies:\n  - python=3.10\n  - ipykernel=6.29.5\n", "has no 'channels'"),
    "no-dependencies": ("name: bad\nchannels:\n  - conda-forge\n", "has no 'dependencies'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_document(tmp_path, case):
    text, expected = BAD_CASES[case]
    path = write_spec(tmp_path, text, "bad")
    with pytest.raises(SpecError) as info:
        check_spec(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "$(rm -rf)",
        "a;b",
        "a b",
        "Upper",
        "-x",
        ".hidden",
        "x" * 65,
        "''",
        '"bad\\n"',
        "[bad]",
    ],
)
def test_bad_name(tmp_path, name):
    path = write_spec(tmp_path, GOOD.replace("{name}", name), "bad")
    with pytest.raises(SpecError) as info:
        check_spec(path)
    assert str(path) in str(info.value)
    assert "is not allowed" in str(info.value)


def test_name_must_equal_the_file_stem(tmp_path):
    path = write_spec(tmp_path, GOOD.format(name="other"), "good")
    with pytest.raises(SpecError, match=r"name 'other' must equal the file name stem 'good'"):
        check_spec(path)


def test_reserved_name(tmp_path):
    path = write_spec(tmp_path, GOOD.format(name="base"), "base")
    with pytest.raises(SpecError, match="reserved by conda"):
        check_spec(path)


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("channels:\n  - conda-forge\n", "channels: []\n", "non-empty list"),
        ("channels:\n  - conda-forge\n", "channels: conda-forge\n", "non-empty list"),
        ("- conda-forge", "- 'conda-forge; rm -rf /'", "not a plain channel name"),
        ("- conda-forge", "- $(curl evil)", "not a plain channel name"),
        ("- conda-forge", "- {a: b}", "not a plain channel name"),
        ("dependencies:\n", "dependencies: python=3.10\nx:\n", "unknown top-level key"),
        ("  - python=3.10\n", "", "no python dependency"),
        ("- python=3.10\n", "- python=3.11\n", "must be 3.10 or 3.10.x"),
        ("- python=3.10\n", "- python=3\n", "must be 3.10 or 3.10.x"),
        ("- python=3.10\n", "- python>=3.10\n", "not pinned exactly"),
        ("- python=3.10\n", "- python=3.10.*\n", "not pinned exactly"),
        ("  - ipykernel=6.29.5\n", "", "no 'ipykernel'"),
        ("- numpy=1.26.4", "- numpy", "'numpy' is not pinned exactly"),
        ("- numpy=1.26.4", "- numpy>=1.26,<2", "not pinned exactly"),
        ("- numpy=1.26.4", "- numpy=1.*", "not pinned exactly"),
        ("- numpy=1.26.4", "- numpy 1.26.4", "not pinned exactly"),
        ("- numpy=1.26.4", "- numpy=1.26.4\n  - numpy==1.26.4", "listed twice"),
        ("- numpy=1.26.4", "- {r: [x]}", "the only nested list is one 'pip:'"),
        ("- numpy=1.26.4", "- 42", "not pinned exactly"),
    ],
)
def test_bad_field(tmp_path, old, new, expected):
    path = good_with(tmp_path, old, new)
    with pytest.raises(SpecError) as info:
        check_spec(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "entry", ["requests", "requests>=2", "requests~=2.3", "-e .", "git+https://example.org/x.git", "requests==2.*"]
)
def test_pip_entries_must_be_pinned(tmp_path, entry):
    path = good_with(tmp_path, "- numpy=1.26.4", f"- pip=24.3.1\n  - pip:\n      - rich==13.9.4\n      - '{entry}'")
    with pytest.raises(SpecError, match="is not pinned exactly as 'name==version'"):
        check_spec(path)


def test_pip_list_needs_pip(tmp_path):
    path = good_with(tmp_path, "- numpy=1.26.4", "- pip:\n      - rich==13.9.4")
    with pytest.raises(SpecError, match="no pinned 'pip' conda dependency"):
        check_spec(path)


def test_pip_list_must_be_a_list(tmp_path):
    path = good_with(tmp_path, "- numpy=1.26.4", "- pip=24.3.1\n  - pip: rich==13.9.4")
    with pytest.raises(SpecError, match="'pip:' must be a non-empty list"):
        check_spec(path)


@pytest.mark.parametrize(
    "old,new",
    [
        ("- python=3.10\n", "- python==3.10.16\n"),
        ("- numpy=1.26.4", "- numpy==1.26.4"),
        ("- numpy=1.26.4", "- numpy=1.26.4=py310hb13e2d6_0"),
        ("- numpy=1.26.4", "- conda-forge::numpy=1.26.4"),
        ("- numpy=1.26.4", "- pip=24.3.1\n  - pip:\n      - rich==13.9.4\n      - uvicorn[standard]==0.32.1"),
        ("- conda-forge", "- conda-forge\n  - nodefaults\n  - https://conda.example.org/mirror/conda-forge"),
    ],
)
def test_accepted_forms(tmp_path, old, new):
    assert check_spec(good_with(tmp_path, old, new))["name"] == "good"


def test_duplicate_names_across_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_spec(tmp_path / "a", GOOD.format(name="dup"), "dup")
    second = write_spec(tmp_path / "b", GOOD.format(name="dup"), "dup")
    with pytest.raises(SpecError) as info:
        check_specs([first, second])
    assert str(second) in str(info.value)
    assert f"env name 'dup' is already used by {first}" in str(info.value)


# --- the command line --------------------------------------------------------


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_ok_one_line_per_file():
    result = run(str(ENVSPEC), *map(str, SPECS))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SPECS)
    assert all(line.startswith("ok ") for line in lines)


def test_cli_exits_1_on_any_problem(tmp_path):
    bad = write_spec(tmp_path, GOOD.format(name="bad").replace("numpy=1.26.4", "numpy"), "bad")
    result = run(str(ENVSPEC), str(SPECS[0]), str(bad))
    assert result.returncode == 1
    ok_line, fail_line = result.stdout.splitlines()
    assert ok_line.startswith("ok ") and str(SPECS[0]) in ok_line
    assert fail_line.startswith("FAIL ") and str(bad) in fail_line and "'numpy'" in fail_line


def test_cli_reports_duplicates(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [write_spec(tmp_path / d, GOOD.format(name="dup"), "dup") for d in "ab"]
    result = run(str(ENVSPEC), *map(str, paths))
    assert result.returncode == 1
    assert "already used" in result.stdout.splitlines()[-1]


def test_cli_without_arguments_is_a_usage_error():
    result = run(str(ENVSPEC))
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_cli_as_module():
    result = run("-m", "spawner.envspec", *map(str, SPECS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_standalone_copy(tmp_path):
    """As in the image build: a lone copy (/tmp/envspec.py), nothing else of the repo."""
    lone = tmp_path / "envspec.py"
    shutil.copy(ENVSPEC, lone)
    specs = tmp_path / "kernels"
    specs.mkdir()
    for spec in SPECS:
        shutil.copy(spec, specs / spec.name)
    result = run("-I", str(lone), *sorted(map(str, specs.glob("*.yml"))), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checker_imports_only_stdlib_and_yaml():
    tree = ast.parse(ENVSPEC.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: it runs as a lone script"
            modules.add(node.module.split(".")[0])
    assert modules - set(sys.stdlib_module_names) == {"yaml"}


# --- kernels/condarc -----------------------------------------------------------


@pytest.fixture(scope="module")
def condarc():
    data = yaml.safe_load((KERNELS / "condarc").read_text())
    assert isinstance(data, dict)
    return data


def inside_home(path):
    path = PurePosixPath(path)
    return path.is_absolute() and HOME in path.parents and ".." not in path.parts


def test_personal_envs_dir_is_on_the_home_volume(condarc):
    first = condarc["envs_dirs"][0]
    assert inside_home(first), first
    # nb_conda_kernels prefixes envs found in another folder named "envs" with
    # that folder's parent's name; any other folder name keeps the plain name.
    assert PurePosixPath(first).name != "envs"


def test_team_envs_dir_follows(condarc):
    assert condarc["envs_dirs"][1:] == ["/opt/conda/envs"]


def test_package_cache_is_on_the_home_volume(condarc):
    assert condarc["pkgs_dirs"] and all(inside_home(p) for p in condarc["pkgs_dirs"])


def test_condarc_solver_and_shell_settings(condarc):
    assert condarc["solver"] == "libmamba"
    assert condarc["auto_activate_base"] is False
    assert condarc["changeps1"] is True


def test_condarc_channels_cover_the_specs(condarc):
    used = {c for p in SPECS for c in yaml.safe_load(p.read_text())["channels"]}
    assert used - {"nodefaults"} <= set(condarc["channels"])
    assert condarc["channel_priority"] == "strict"


# --- kernels/jupyter/jupyter_server_config.json -----------------------------------


@pytest.fixture(scope="module")
def cksm():
    config = json.loads((KERNELS / "jupyter" / "jupyter_server_config.json").read_text())
    # Only the manager's options: enabling the class is nb_conda_kernels' own
    # installed config's job, so a server without the package still starts.
    assert set(config) == {"CondaKernelSpecManager"}
    return config["CondaKernelSpecManager"]


def test_name_format_is_set_and_readable(cksm):
    fields = dict(
        language="Python",
        environment="pytorch",
        display_name="Python 3 (ipykernel)",
        kernel="python3",
        conda_kernel="conda-env-pytorch-py",
    )
    name = cksm["name_format"].format("Python", "pytorch", **fields)
    assert name == "Python 3 (ipykernel) [conda env: pytorch]"


def test_base_env_is_hidden(cksm):
    env_filter = re.compile(cksm["env_filter"])
    assert env_filter.search("/opt/conda")
    for kept in (
        "/opt/conda/envs/pytorch",
        "/opt/conda/envs/python310",
        "/home/jovyan/conda-envs/myexp",
        "/home/jovyan/conda-envs/conda",
    ):
        assert not env_filter.search(kept), kept
    # the server env's own native "python3" kernel is base too: conda kernels only
    assert cksm["conda_only"] is True


def test_no_kernelspec_path(cksm):
    # kernelspec_path would make the manager write kernel specs on every refresh
    assert "kernelspec_path" not in cksm
