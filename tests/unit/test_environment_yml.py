"""The top-level environment.yml (conda dev env) agrees with the hub image's
pins (images/hub/requirements.txt) and with pyproject.toml's ranges."""

from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .pinfile import read_pins

ROOT = Path(__file__).resolve().parents[2]
HUB_REQUIREMENTS = ROOT / "images" / "hub" / "requirements.txt"
HUB_STACK = {"jupyterhub", "dockerspawner", "jupyterhub-nativeauthenticator", "jupyterhub-idle-culler", "docker"}


@pytest.fixture(scope="module")
def env():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def pip_entries(env):
    lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(lists) == 1, "one pip: list"
    return lists[0]


@pytest.fixture(scope="module")
def env_pins(pip_entries):
    pins = read_pins(ROOT / "environment.yml")
    for entry in pip_entries:
        if entry != "-e .":
            name = canonicalize_name(entry.split("=", 1)[0])
            assert name in pins and pins[name].op == "==", f"environment.yml: pip entry {entry!r} is not name==version"
    return {name: pin.version for name, pin in pins.items()}


def read_hub_pins():
    # Fails (no skip) when the file is missing: it is the hub stack's one source.
    assert HUB_REQUIREMENTS.is_file(), f"{HUB_REQUIREMENTS} is missing"
    return {name: pin.version for name, pin in read_pins(HUB_REQUIREMENTS).items()}


def test_env_basics(env, pip_entries):
    assert env["name"] == "gpuhub-dev"
    assert "python=3.11" in env["dependencies"]
    assert "-e ." in pip_entries


def test_env_has_the_whole_stack(env_pins):
    wanted = HUB_STACK | {"pyyaml", "nvidia-ml-py", "pytest", "pytest-asyncio", "requests"}
    assert wanted <= set(env_pins)


def test_pins_agree_with_hub_image(env_pins):
    hub = read_hub_pins()
    assert HUB_STACK <= set(hub), "the hub image pins the whole hub stack"
    for name, version in hub.items():
        assert env_pins.get(name) == version, (
            f"{name}: images/hub/requirements.txt pins {version}, environment.yml {env_pins.get(name, 'nothing')}"
        )


def test_pins_satisfy_pyproject(env_pins):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    for text in reqs:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in env_pins:
            assert req.specifier.contains(env_pins[name], prereleases=True), (
                f"environment.yml pins {name}=={env_pins[name]}, pyproject.toml wants {req}"
            )
