"""Advisory floors: every security-relevant pin records, on its own line, the
version it must never drop below and the advisories why (format in
pinfile.py); these tests fail when a floor comment goes missing or a pin sinks
below its floor."""

from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .pinfile import floor_problems, parse_pins, read_pins

REPO = Path(__file__).resolve().parents[2]
# Which pins must carry a floor, per file (issue 7, "Vulnerable pins"):
# jupyterhub everywhere it is installed, JupyterLab and jupyter_server in both
# single-user images; oauthenticator in the hub (issue 9). The production image pins jupyterhub through the
# jupyterhub-singleuser metapackage, whose version is jupyterhub's.
FLOORED = {
    "images/hub/requirements.txt": {"jupyterhub", "oauthenticator"},
    "environment.yml": {"jupyterhub"},
    "images/singleuser-standin/requirements.txt": {"jupyterhub", "jupyterlab", "jupyter-server"},
    "images/singleuser/base-environment.yml": {"jupyterhub-singleuser", "jupyterlab", "jupyter-server"},
    "images/sshd/requirements.txt": {"jupyter-server-proxy"},
}
CONDA_FILES = ["environment.yml", "images/singleuser/base-environment.yml"]


@pytest.mark.parametrize("path", sorted(FLOORED))
def test_pins_carry_their_floors_and_stay_at_or_above(path):
    assert floor_problems(read_pins(REPO / path), FLOORED[path]) == []


def yaml_pins(path):
    """(name, version) of every dependency string yaml sees, pip: list included."""
    deps = yaml.safe_load((REPO / path).read_text())["dependencies"]
    flat = [d for d in deps if isinstance(d, str)] + [p for d in deps if isinstance(d, dict) for p in d["pip"]]
    return sorted(tuple(d.replace("==", "=").split("=")) for d in flat if "=" in d)


@pytest.mark.parametrize("path", CONDA_FILES)
def test_line_parser_sees_every_pin_yaml_sees(path):
    # The pins are read line by line (to keep the comments): nothing yaml
    # reads as a pin may escape that parser.
    seen = sorted((pin.name, pin.version) for pin in read_pins(REPO / path).values())
    assert seen == sorted((canonicalize_name(n), v) for n, v in yaml_pins(path))


def test_pyproject_jupyterhub_range_excludes_versions_below_the_floor():
    floor = Version(read_pins(REPO / "images/hub/requirements.txt")["jupyterhub"].floor)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [req] = [Requirement(d) for d in deps if Requirement(d).name == "jupyterhub"]
    lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert lower and min(lower) >= floor, f"pyproject.toml allows {req}, the advisory floor is {floor}"


# The checker itself, on texts that must fail.

HUB_LINE = "jupyterhub=={}  # floor 5.5.1: CVE-2026-54338 (fixed 5.5.0), GHSA-c4gm-pwx9-9w8j (fixed 5.5.1)\n"


def test_a_pin_below_its_floor_fails():
    pins = parse_pins(HUB_LINE.format("5.4.6"), "requirements.txt", strict=True)
    assert floor_problems(pins, {"jupyterhub"}) == ["jupyterhub: 5.4.6 on line 1 is below its advisory floor 5.5.1"]


def test_a_pin_at_its_floor_passes():
    assert floor_problems(parse_pins(HUB_LINE.format("5.5.1"), "requirements.txt"), {"jupyterhub"}) == []


def test_a_missing_floor_comment_fails():
    pins = parse_pins("  - jupyterlab=4.6.6\n", "base-environment.yml")
    assert floor_problems(pins, {"jupyterlab"}) == ["jupyterlab: line 1 has no '# floor X: ADVISORY' comment"]


def test_a_missing_pin_fails():
    assert floor_problems(parse_pins("jupyterlab==4.6.6\n", "r.txt"), {"jupyter_server"}) == [
        "jupyter_server: not pinned"
    ]


def test_a_floor_without_an_advisory_fails():
    pins = parse_pins("jupyter_server==2.21.1  # floor 2.21.0: because\n", "r.txt")
    assert floor_problems(pins, {"jupyter-server"}) == [
        "jupyter-server: the floor on line 1 names no advisory (CVE-…, GHSA-…)"
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("# floor 5.5.1: CVE-2026-54338\njupyterhub==6.1.1\n", "must sit on its pin's line"),
        ("jupyterhub==6.1.1  # floor: CVE-2026-54338\n", "write the floor as"),
        ("jupyterhub>=6.1.1\n", "not an exact name==version pin"),
        ("jupyterhub=6.1.1\n", "not an exact name==version pin"),
        ("jupyterhub==6.1.1\nJupyterHub==6.1.0\n", "pinned twice"),
    ],
)
def test_malformed_pin_files_are_refused(text, error):
    with pytest.raises(ValueError, match=error):
        parse_pins(text, "requirements.txt", strict=True)
