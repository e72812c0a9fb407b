"""The platform's one settings schema.

Every setting has a default, a parser and a help text. Values come from an
optional YAML settings file and from ``GPUHUB_<NAME>`` environment variables
(which win). ``jupyterhub_config.py`` maps them onto traitlets config.
"""

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

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


def _profiles(value: Any) -> list[dict]:
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise ValueError("expected a list of profile mappings")
    return value


@dataclass(frozen=True)
class Setting:
    default: Any
    parse: Callable[[Any], Any]
    help: str


SCHEMA: dict[str, Setting] = {
    "prefix": Setting("gpuhub", _name, "Prefix of every container and volume this hub creates, e.g. `labhub`."),
    "network": Setting("gpuhub", _name, "Docker network shared by the hub and user containers."),
    "hub_connect_host": Setting("hub", _str, "Name under which user containers reach the hub on that network."),
    "data_dir": Setting("/srv/jupyterhub/data", _str, "Where the hub keeps its database and secrets (a volume)."),
    "admin_users": Setting(["admin"], _list, "Admin usernames, e.g. `alice,bob`; the hub creates the first at start."),
    "image": Setting("gpuhub/singleuser:0.1.0", _str, "Default single-user image."),
    "allowed_images": Setting([], _list, "Images users may choose (the default image is always allowed)."),
    "pull_policy": Setting("ifnotpresent", _choice("ifnotpresent", "always", "never", "skip"), "When to pull images."),
    "mem_limit": Setting("8G", parse_size, "Default memory limit of a user container, e.g. `16G`."),
    "cpu_limit": Setting(2.0, _float, "Default CPU limit of a user container, e.g. `4`."),
    "shm_size": Setting("2G", parse_size, "Default /dev/shm size (Docker's 64M breaks PyTorch DataLoader workers)."),
    "shared_data": Setting("", _str, "Host path or volume mounted read-only at /data in every user container."),
    "gpus": Setting(
        [], _list, "GPU ids (indices, GPU-/MIG- UUIDs): the inventory without NVML/nvidia-smi, else a filter of theirs."
    ),
    "gpu_mode": Setting("device-requests", _choice(*GPU_MODES), "How GPUs reach containers."),
    "gpu_runtime": Setting("nvidia", _name, "Docker runtime that passes GPUs through in gpu_mode runtime."),
    "gpu_quota": Setting(None, _optional_int, "Most GPUs one user may hold (empty: no limit), e.g. `2`."),
    "gpu_group_quotas": Setting({}, _quotas, "Per-group GPU maximum, e.g. `students=1,staff=4`."),
    "profiles": Setting([], _profiles, "Profiles in KubeSpawner's profile_list shape (empty: the built-in set)."),
    "isolate_servers": Setting(
        True, _bool, "Each server on a network of its own: user containers cannot reach each other."
    ),
    "idle_timeout": Setting(3600, _int, "Seconds of inactivity before a server is culled (0: never)."),
    "log_level": Setting("INFO", _choice("debug", "info", "warning", "error"), "Hub log level."),
}


def load_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Defaults, then the settings file, then ``GPUHUB_*`` variables.

    Raises SettingsError naming the offending key and source.
    """
    raw: dict[str, tuple[Any, str]] = {}
    path = environ.get(SETTINGS_FILE_ENV, "")
    if path:
        raw.update((k, (v, path)) for k, v in _read_file(path).items())
    for key, value in environ.items():
        # An empty variable means "unset": compose passes every key through.
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
