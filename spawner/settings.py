"""The platform's one settings schema.

Every setting has a default, a parser, a help text and an example. Values come
from an optional YAML settings file and from ``GPUHUB_<NAME>`` environment
variables (which win). ``spawner.configure.apply`` maps them onto traitlets
config. A new setting: its key here, its line in ``apply``, and its
``GPUHUB_<KEY>`` line in docker-compose.yml (the unit tests say what is
missing). Scripts and hubctl import this module: it must not import
JupyterHub or DockerSpawner.
"""

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import yaml

from .providers import NATIVE, parse_auth
from .sizes import parse_size

GPU_MODES = ("device-requests", "runtime")  # how leased GPUs reach containers
ENV_PREFIX = "GPUHUB_"
SETTINGS_FILE_ENV = "GPUHUB_SETTINGS_FILE"


class SettingsError(ValueError):
    """A setting has a value the platform cannot use."""


def _str(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError("expected a string")
    return str(value).strip()


def _name(value: Any) -> str:
    text = _str(value)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,39}", text):
        raise ValueError("expected lower-case letters, digits, '_', '.', '-' (max 40)")
    return text


def _list(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("expected a comma-separated list")
    return [_str(item) for item in items if _str(item)]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\d+", str(value).strip()):
        raise ValueError("expected a non-negative integer")
    return int(value)


def _bool(value: Any) -> bool:
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("expected true or false")
    return text in ("true", "1", "yes")


def _optional_int(value: Any) -> int | None:
    return None if str(value).strip().lower() in ("", "none") else _int(value)


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None
    if number <= 0 or isinstance(value, bool):
        raise ValueError("expected a positive number")
    return number


def _percent(value: Any) -> int:
    number = _int(value)
    if number > 100:
        raise ValueError("expected a percentage 0..100")
    return number


def _optional_size(value: Any) -> str:
    return "" if str(value).strip() == "" else parse_size(value)


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value).lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _quotas(value: Any) -> dict[str, int]:
    """``group=N,group2=M`` (env) or a mapping (file)."""
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("expected group=N pairs separated by commas")
        value = {k.strip(): v for k, v in pairs}
    if not isinstance(value, dict):
        raise ValueError("expected group=N pairs")
    return {_str(group): _int(limit) for group, limit in value.items()}


def _auth(value: Any) -> dict[str, Any]:
    """A provider name, or its mapping (YAML in a variable)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        value = yaml.safe_load(value)
    return parse_auth(value)


def _public_url(value: Any) -> str:
    text = _str(value)
    # The hub is served at the root (its base_url is /): an origin, no path.
    if text and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?/?", text):
        raise ValueError("expected an http(s) origin such as https://gpu.example.org/ (no path)")
    return text.rstrip("/") + "/" if text else ""


def _nfs_export(value: Any) -> str:
    text = _str(value)
    if text and not re.fullmatch(r"[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]*", text):
        raise ValueError("expected an NFS export such as 10.0.0.5:/export/gpuhub-homes")
    return text.rstrip("/")


def _profiles(value: Any) -> list[dict]:
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise ValueError("expected a list of profile mappings")
    return value


@dataclass(frozen=True)
class Setting:
    """One key of the schema: the platform's default, its parser, what it does
    and an example value (as written in settings.yml or a variable)."""

    default: Any
    parse: Callable[[Any], Any]
    help: str
    example: Any
    # Set only by its GPUHUB_<KEY> variable: docker-compose.yml names its own
    # objects with it, so a value in the settings file would be overruled.
    variable_only: bool = False


# The single-user image built beside this package (scripts/build-images tags it with this version).
DEFAULT_IMAGE = f"gpuhub/singleuser:{version('gpuhub')}"

SCHEMA: dict[str, Setting] = {
    "prefix": Setting(
        "gpuhub",
        _name,
        "Prefix of every container, volume and network of this deployment, and its label gpuhub.deployment.",
        "labhub",
        variable_only=True,
    ),
    "network": Setting(
        "gpuhub",
        _name,
        "Docker network of the hub (and of user containers where isolate_servers is off).",
        "labnet",
        variable_only=True,
    ),
    "hub_connect_host": Setting(
        "hub", _str, "Name under which user containers reach the hub (its alias on their networks).", "jupyterhub"
    ),
    "data_dir": Setting(
        "/srv/jupyterhub/data", _str, "Where the hub keeps its database and secrets (a volume).", "/srv/hubdata"
    ),
    "admin_users": Setting(["admin"], _list, "Admin usernames; the hub creates the first at start.", "alice,bob"),
    "image": Setting(DEFAULT_IMAGE, _str, "Single-user image of every server whose profile names none.", "lab/gpu:1"),
    "allowed_images": Setting(
        [], _list, "Images profiles and REST requests may choose besides `image`.", "lab/gpu:1,lab/tf:2"
    ),
    "pull_policy": Setting(
        "ifnotpresent", _choice("ifnotpresent", "always", "never", "skip"), "When to pull images.", "always"
    ),
    "mem_limit": Setting("8G", parse_size, "Memory limit of a server whose profile sets none.", "16G"),
    "cpu_limit": Setting(2.0, _float, "CPU limit of a server whose profile sets none.", 4),
    "shm_size": Setting(
        "2G",
        parse_size,
        "/dev/shm of a server whose profile sets none (Docker's 64M breaks PyTorch DataLoader workers).",
        "8G",
    ),
    "shared_data": Setting(
        "", _str, "Host path or volume mounted read-only at /data in every user container (empty: none).", "/srv/data"
    ),
    "gpus": Setting(
        [],
        _list,
        "GPU ids (indices, GPU-/MIG- UUIDs): the inventory without NVML/nvidia-smi, else a filter of theirs.",
        "0,1",
    ),
    "gpu_mode": Setting("device-requests", _choice(*GPU_MODES), "How leased GPUs reach containers.", "runtime"),
    "gpu_runtime": Setting(
        "nvidia", _name, "Docker runtime that passes GPUs through where gpu_mode is runtime.", "nvidia-cdi"
    ),
    "gpu_quota": Setting(
        None, _optional_int, "Most GPUs one user may hold (empty: no limit); admins may exceed it.", 2
    ),
    "gpu_group_quotas": Setting(
        {},
        _quotas,
        "Per-group GPU maximum: a user's limit is the most generous of gpu_quota and their groups'.",
        "students=1,staff=4",
    ),
    "profiles": Setting(
        [],
        _profiles,
        "Profiles in KubeSpawner's profile_list shape (empty: the built-in set).",
        [{"display_name": "1 GPU", "slug": "gpu-1", "spawner_override": {"gpus": 1}}],
    ),
    "isolate_servers": Setting(
        True, _bool, "Each server on a network of its own: user containers cannot reach each other.", "false"
    ),
    "idle_timeout": Setting(3600, _int, "Seconds of inactivity before a server is culled (0: never).", 7200),
    "log_level": Setting("info", _choice("debug", "info", "warning", "error"), "Hub log level.", "debug"),
    "public_url": Setting(
        "",
        _public_url,
        "The hub's URL as browsers reach it, behind a reverse proxy (empty: whatever URL the browser used).",
        "https://gpu.example.org/",
    ),
    "auth": Setting(
        {"provider": NATIVE},
        _auth,
        "Sign-in: native (the hub's own accounts) or an identity provider's mapping (spawner/providers.py).",
        {"provider": "github", "client_id": "Iv1.0123", "organizations": ["mylab"]},
    ),
    "engine": Setting(
        "docker",
        _choice("docker", "swarm"),
        "Where servers run: this host's Docker, or a Docker Swarm across GPU servers (scripts/cluster-up).",
        "swarm",
    ),
    "workspace_nfs": Setting(
        "",
        _nfs_export,
        "Swarm: an NFS export holding one directory per user (named as their volume), mounted wherever a "
        "server lands; empty: each workspace stays on the node where it was made and its user is pinned there.",
        "10.0.0.5:/export/gpuhub-homes",
    ),
    "gpu_idle_timeout": Setting(
        7200,
        _int,
        "Seconds a server's leased GPUs may stay idle (below gpu_idle_threshold) before it is stopped (0: never).",
        3600,
    ),
    "gpu_idle_threshold": Setting(
        5, _percent, "Percent of SM and of memory activity below which a GPU counts as idle.", 10
    ),
    "gpu_idle_warning": Setting(
        900, _int, "Seconds before a GPU-idle stop that the user is warned on the hub's home page.", 1800
    ),
    "gpu_idle_exempt_admins": Setting(True, _bool, "Admins' servers are never stopped for idle GPUs.", "false"),
    "gpu_idle_exempt_group": Setting(
        "", _str, "Members of this JupyterHub group are never stopped for idle GPUs (empty: none).", "long-runs"
    ),
    "gpu_samples_file": Setting(
        "",
        _str,
        "GPU activity from this JSON file ({id: {sm, memory}} in percent) instead of NVML (empty: NVML).",
        "/srv/jupyterhub/data/gpu-samples.json",
    ),
    "workspace_soft_limit": Setting(
        "", _optional_size, "Workspace size above which a spawn shows a warning (empty: none).", "50G"
    ),
}


def load_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Defaults, then the settings file, then ``GPUHUB_*`` variables.

    Raises SettingsError naming the offending key and source.
    """
    raw: dict[str, tuple[Any, str]] = {}
    path = environ.get(SETTINGS_FILE_ENV, "")
    if path:
        raw.update((k, (v, path)) for k, v in _read_file(path).items())
        overruled = sorted(k for k in raw if k in SCHEMA and SCHEMA[k].variable_only)
        if overruled:
            variables = ", ".join(ENV_PREFIX + k.upper() for k in overruled)
            raise SettingsError(
                f"{path}: {', '.join(overruled)} can only be set as a variable ({variables}): "
                "docker-compose.yml names its own objects with these"
            )
    for key, value in environ.items():
        # An empty variable means "unset": docker-compose.yml passes every key, set or not.
        if key.startswith(ENV_PREFIX) and key != SETTINGS_FILE_ENV and value != "":
            raw[key[len(ENV_PREFIX) :].lower()] = (value, key)
    unknown = sorted(set(raw) - set(SCHEMA))
    if unknown:
        sources = ", ".join(f"{raw[k][1]}: {k}" for k in unknown)
        raise SettingsError(f"unknown setting(s) ({sources}); known: {', '.join(SCHEMA)}")
    settings = {name: setting.default for name, setting in SCHEMA.items()}
    for name, (value, source) in raw.items():
        try:
            settings[name] = SCHEMA[name].parse(value)
        except ValueError as e:
            raise SettingsError(f"{source}: bad value for {name!r}: {value!r} ({e})") from None
    return settings


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise SettingsError(f"cannot read settings file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SettingsError(f"settings file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of setting: value")
    return data
