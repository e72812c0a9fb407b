"""The one parser of the exact pins in the images' dependency files and
environment.yml, and of the advisory floor recorded next to a pin.

A pin is one line:
  requirements.txt                  name==1.2.3
  conda env file (dependencies:)    - name=1.2.3
  conda env file (a pip: list)      - name==1.2.3
A security-relevant pin carries its floor in a trailing comment, in this form:
  name==1.2.3  # floor 1.2.0: CVE-2026-00001 (fixed 1.1.0), GHSA-abcd-efgh-ijkl (fixed 1.2.0)
read: never below 1.2.0, because of the advisories named after the colon (CVE
or GHSA ids, or owner/repo#N where no id exists).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

_PIN = re.compile(
    r"^\s*(?:-\s+)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<op>==?)(?P<version>[0-9][A-Za-z0-9.+!_-]*)"
    r"\s*(?:#\s*(?P<comment>.*))?$"
)
_FLOOR = re.compile(r"^floor\s+(?P<version>[0-9][A-Za-z0-9.]*)\s*:\s*(?P<why>\S.*)$")
_FLOOR_WORD = re.compile(r"#\s*floor\b")
ADVISORY = re.compile(r"\b(?:CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|[\w.-]+/[\w.-]+#\d+)")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503): jupyter_server -> jupyter-server
    op: str  # "==" (pip) or "=" (conda)
    version: str
    floor: str | None
    advisories: tuple[str, ...]
    line: int


def parse_pins(text: str, source: str, strict: bool = False) -> dict[str, Pin]:
    """{canonical name: Pin} of every pin line in `text`. `strict` (requirements
    files): every line that is not blank or a comment must be a `==` pin.
    A floor comment anywhere but on a pin, or not in the form above, raises."""
    pins = {}
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{source}:{number}"
        match = _PIN.match(line)
        if not match:
            if _FLOOR_WORD.search(line):
                raise ValueError(f"{where}: a floor comment must sit on its pin's line: {line.strip()!r}")
            if strict and line.split("#", 1)[0].strip():
                raise ValueError(f"{where}: not an exact name==version pin: {line.strip()!r}")
            continue
        if strict and match["op"] != "==":
            raise ValueError(f"{where}: not an exact name==version pin: {line.strip()!r}")
        floor, advisories = None, ()
        comment = match["comment"] or ""
        if re.match(r"floor\b", comment):
            floor_match = _FLOOR.match(comment)
            if not floor_match:
                raise ValueError(f"{where}: write the floor as '# floor X.Y.Z: ADVISORY (fixed A.B.C), ...'")
            floor, advisories = floor_match["version"], tuple(ADVISORY.findall(floor_match["why"]))
        name = canonicalize_name(match["name"])
        if name in pins:
            raise ValueError(f"{where}: {name} is pinned twice (first on line {pins[name].line})")
        pins[name] = Pin(name, match["op"], match["version"], floor, advisories, number)
    return pins


def read_pins(path: Path) -> dict[str, Pin]:
    """parse_pins of a file; requirements files (*.txt) are read strictly."""
    return parse_pins(path.read_text(), path.name, strict=path.suffix == ".txt")


def floor_problems(pins: dict[str, Pin], required: set[str]) -> list[str]:
    """What is wrong with the floors: a required package without a pin, or
    without a floor, or a floor that names no advisory; a pin below its floor."""
    problems = []
    for name in sorted(required):
        pin = pins.get(canonicalize_name(name))
        if pin is None:
            problems.append(f"{name}: not pinned")
        elif pin.floor is None:
            problems.append(f"{name}: line {pin.line} has no '# floor X: ADVISORY' comment")
    for pin in pins.values():
        if pin.floor is None:
            continue
        if not pin.advisories:
            problems.append(f"{pin.name}: the floor on line {pin.line} names no advisory (CVE-…, GHSA-…)")
        if Version(pin.version) < Version(pin.floor):
            problems.append(f"{pin.name}: {pin.version} on line {pin.line} is below its advisory floor {pin.floor}")
    return problems
