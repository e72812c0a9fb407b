"""Checker for the team conda environment specs in ``kernels/*.yml``.

Each spec becomes a shared conda env (and so a kernel) of the production
single-user image, whose build runs this file with only PyYAML installed::

    python /tmp/envspec.py /tmp/kernels/*.yml     # standalone script
    python -m spawner.envspec kernels/*.yml       # from the repository

Hence: standard library + PyYAML only, no import from the rest of ``spawner``.

A spec is a YAML mapping of exactly ``name`` (``^[a-z0-9][a-z0-9_.-]{0,63}$``,
not reserved by conda, equal to the file stem, unique across the files),
``channels`` (non-empty list of channel names or http(s) URLs) and
``dependencies``: ``python`` pinned to 3.10, ``ipykernel`` present, every
conda dependency pinned exactly (``pkg=1.2.3``/``pkg==1.2.3``, optional
``=build``; ranges and wildcards are not pins), an optional ``pip:`` list of
``name==version`` entries (with ``pip`` itself among the conda dependencies).
``prefix`` is refused: the image decides where envs live.
"""

import re
import sys
from pathlib import Path

import yaml

__all__ = ["SpecError", "check_spec", "check_specs", "main"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# conda refuses these as env names (`conda create -n base` fails).
RESERVED_NAMES = {"base", "root"}
ALLOWED_KEYS = {"name", "channels", "dependencies"}
CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$")
CHANNEL_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9_.~%/-]*)?$")
# [channel::]name(=|==)version[=build]; the version has no operator or wildcard.
CONDA_PIN_RE = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9][A-Za-z0-9_.-]*)::)?"
    r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)"
    r"(?:==|=)(?P<version>[0-9][A-Za-z0-9_.+!]*)"
    r"(?:=(?P<build>[A-Za-z0-9_.*]+))?$"
)
PIP_PIN_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,-]+\])?"
    r"==(?P<version>[0-9][A-Za-z0-9.+!_-]*)$"
)
PYTHON_RE = re.compile(r"^3\.10(\.[0-9]+)?$")


class SpecError(ValueError):
    """A spec file that must not be built; the message names file and problem."""


def _fail(path, problem):
    raise SpecError(f"{path}: {problem}")


def _load(path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        _fail(path, f"cannot be read ({err.strerror or err})")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        _fail(path, f"is not valid YAML ({' '.join(str(err).split())})")


def _check_name(path, spec):
    name = spec.get("name")
    if name is None:
        _fail(path, "has no 'name'")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        _fail(
            path,
            f"name {name!r} is not allowed: use 1-64 of a-z 0-9 _ . - "
            "starting with a letter or digit (no paths, spaces or shell characters)",
        )
    if name in RESERVED_NAMES:
        _fail(path, f"name {name!r} is reserved by conda")
    if name != Path(path).stem:
        _fail(path, f"name {name!r} must equal the file name stem {Path(path).stem!r}")
    return name


def _check_channels(path, channels):
    if not isinstance(channels, list) or not channels:
        _fail(path, "'channels' must be a non-empty list")
    for channel in channels:
        if not isinstance(channel, str) or not (
            CHANNEL_NAME_RE.fullmatch(channel) or CHANNEL_URL_RE.fullmatch(channel)
        ):
            _fail(path, f"channel {channel!r} is not a plain channel name or http(s) URL")


def _check_pip(path, entries):
    if not isinstance(entries, list) or not entries:
        _fail(path, "'pip:' must be a non-empty list")
    for entry in entries:
        if not isinstance(entry, str) or not PIP_PIN_RE.fullmatch(entry.strip()):
            _fail(path, f"pip dependency {entry!r} is not pinned exactly as 'name==version'")


def _check_dependencies(path, deps):
    if not isinstance(deps, list):
        _fail(path, "'dependencies' must be a list")
    pinned, pip_entries = {}, None
    for dep in deps:
        if isinstance(dep, dict):
            if set(dep) != {"pip"} or pip_entries is not None:
                _fail(path, f"dependency {dep!r} is not allowed: the only nested list is one 'pip:'")
            pip_entries = dep["pip"]
            continue
        match = CONDA_PIN_RE.fullmatch(dep.strip()) if isinstance(dep, str) else None
        if not match:
            _fail(
                path,
                f"dependency {dep!r} is not pinned exactly "
                "(use 'name=version' or 'name==version'; ranges and wildcards are not pins)",
            )
        name = match["name"].lower()
        if name in pinned:
            _fail(path, f"dependency {name!r} is listed twice")
        pinned[name] = match["version"]
    if "python" not in pinned:
        _fail(path, "has no python dependency: pin 'python=3.10'")
    if not PYTHON_RE.fullmatch(pinned["python"]):
        _fail(path, f"python is pinned to {pinned['python']!r}: it must be 3.10 or 3.10.x")
    if "ipykernel" not in pinned:
        _fail(path, "has no 'ipykernel' dependency: without it the env shows no kernel")
    if pip_entries is not None:
        if "pip" not in pinned:
            _fail(path, "has a 'pip:' list but no pinned 'pip' conda dependency")
        _check_pip(path, pip_entries)


def check_spec(path):
    """Check one spec file; return the parsed spec or raise SpecError."""
    spec = _load(path)
    if not isinstance(spec, dict):
        _fail(path, "must be a YAML mapping with name, channels and dependencies")
    if "prefix" in spec:
        _fail(path, "has a 'prefix' key: a spec must not choose where it is installed")
    unknown = sorted(str(key) for key in spec if key not in ALLOWED_KEYS)
    if unknown:
        _fail(path, f"has unknown top-level key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(ALLOWED_KEYS))})")
    _check_name(path, spec)
    for key in ("channels", "dependencies"):
        if key not in spec:
            _fail(path, f"has no {key!r}")
    _check_channels(path, spec["channels"])
    _check_dependencies(path, spec["dependencies"])
    return spec


def _duplicate_names(specs_by_path):
    first, problems = {}, []
    for path, spec in specs_by_path.items():
        name = spec["name"]
        if name in first:
            problems.append(f"{path}: env name {name!r} is already used by {first[name]}")
        first.setdefault(name, path)
    return problems


def check_specs(paths):
    """Check several spec files; return {env name: spec} or raise SpecError.

    Besides each file's own rules, two files may not define the same env name.
    """
    specs_by_path = {str(path): check_spec(path) for path in paths}
    problems = _duplicate_names(specs_by_path)
    if problems:
        raise SpecError("; ".join(problems))
    return {spec["name"]: spec for spec in specs_by_path.values()}


def main(argv=None):
    """CLI: one line per file, exit status 1 if any spec is refused."""
    paths = sys.argv[1:] if argv is None else list(argv)
    if not paths:
        print("usage: envspec.py SPEC.yml [SPEC.yml ...]", file=sys.stderr)
        return 2
    specs_by_path, failed = {}, False
    for path in paths:
        try:
            spec = check_spec(path)
        except SpecError as err:
            print(f"FAIL {err}")
            failed = True
            continue
        specs_by_path[str(path)] = spec
        print(f"ok   {path}: env {spec['name']!r}, {len(spec['dependencies'])} dependencies")
    for problem in _duplicate_names(specs_by_path):
        print(f"FAIL {problem}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
