"""The Zero to JupyterHub chart's side of `hubctl k8s-values`, without a cluster:
its pinned defaults and schema (tests/data/z2jh-<version>), Helm's merge of a
site's values over the defaults, and the part of the chart's hub configuration
(`jupyterhub/files/hub/jupyterhub_config.py` at that tag) that turns the values
the generator writes into KubeSpawner's traits.

The last is a narrow restatement, not the chart's file: that file reads the
values from paths of the hub pod and needs pycurl. It covers the keys in
SINGLEUSER_TO_SPAWNER; test_k8s_values checks that the generator writes no
other ``singleuser`` key (but CHART_TEMPLATES', which the chart renders into
Kubernetes objects of their own, not into KubeSpawner).
"""

import copy
import json
from collections.abc import Mapping
from pathlib import Path

import yaml
from traitlets.config import Config

from spawner.hubctl.k8svalues import CHART_VERSION

CHART_DIR = Path(__file__).resolve().parents[1] / "data" / f"z2jh-{CHART_VERSION}"
SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))

# singleuser.<key> -> the KubeSpawner trait the chart sets from it
SINGLEUSER_TO_SPAWNER = {
    "uid": "uid",
    "fsGid": "fs_gid",
    "allowPrivilegeEscalation": "allow_privilege_escalation",
    "memory": "mem_limit, mem_guarantee",
    "cpu": "cpu_limit, cpu_guarantee",
    "extraResource": "extra_resource_limits, extra_resource_guarantees",
    "extraEnv": "environment",
    "profileList": "profile_list",
    "image": "image, image_pull_policy",
    "cmd": "cmd",
    "storage": "volumes, volume_mounts, storage_*",
    "extraFiles": "volumes, volume_mounts",
}
CHART_TEMPLATES = {"networkPolicy"}  # the chart's NetworkPolicy of user pods


def helm_merge(defaults: Mapping, values: Mapping) -> dict:
    """Helm's coalescing of values over a chart's defaults: mappings merged, a null removes."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _get(values: Mapping, path: str):
    for key in path.split("."):
        if not isinstance(values, Mapping):
            return None
        values = values.get(key)
    return values


def chart_config(values: Mapping) -> Config:
    """The hub's traitlets config from a site's values, as the pinned chart makes it."""
    merged = helm_merge(DEFAULTS, values)
    su = merged["singleuser"]
    c = Config()
    spawner = c.KubeSpawner
    direct = {
        "uid": "uid", "fs_gid": "fsGid", "allow_privilege_escalation": "allowPrivilegeEscalation",
        "mem_limit": "memory.limit", "mem_guarantee": "memory.guarantee", "cpu_limit": "cpu.limit",
        "cpu_guarantee": "cpu.guarantee", "extra_resource_limits": "extraResource.limits",
        "extra_resource_guarantees": "extraResource.guarantees", "environment": "extraEnv",
        "profile_list": "profileList", "image_pull_policy": "image.pullPolicy",
    }  # fmt: skip
    for trait, path in direct.items():
        value = _get(su, path)
        if value is not None or trait == "allow_privilege_escalation":  # the chart passes that one's null on
            spawner[trait] = value
    spawner.image = f"{su['image']['name']}:{su['image']['tag']}"
    c.Spawner.cmd = su["cmd"]

    storage = su["storage"]
    volumes, mounts = {}, {}
    if storage["type"] == "dynamic":  # a claim per user, created by KubeSpawner
        dynamic = storage["dynamic"]
        name = dynamic["volumeNameTemplate"]
        spawner.storage_pvc_ensure = True
        spawner.storage_capacity = storage["capacity"]
        spawner.storage_access_modes = dynamic["storageAccessModes"]
        volumes[name] = {"name": name, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
        mounts[name] = {"name": name, "mountPath": storage["homeMountPath"], "subPath": dynamic["subPath"]}
    files = su.get("extraFiles") or {}
    if files:  # one Secret of the chart holds every file; each is mounted by its key
        items = [{"key": key, "path": key} for key in files]
        volumes["files"] = {"name": "files", "secret": {"secretName": "singleuser", "items": items}}
        for index, (key, file) in enumerate(files.items()):
            mounts[f"{index}-files"] = {"name": "files", "mountPath": file["mountPath"], "subPath": key}
    volumes.update(storage.get("extraVolumes") or {})
    mounts.update(storage.get("extraVolumeMounts") or {})
    spawner.volumes, spawner.volume_mounts = volumes, mounts

    for section, traits in (merged["hub"].get("config") or {}).items():
        c[section].update(copy.deepcopy(traits))
    for _, source in sorted((merged["hub"].get("extraConfig") or {}).items()):
        exec(source, {"c": c})  # as the chart runs hub.extraConfig, with the config at hand
    return c


def culler_command(values: Mapping) -> list[str] | None:
    """The idle culler's command line as the chart starts it (None: the chart starts none)."""
    cull = helm_merge(DEFAULTS, values)["cull"]
    if not cull["enabled"]:
        return None
    command = ["python3", "-m", "jupyterhub_idle_culler", "--url=http://localhost:8081/hub/api"]
    command += [f"--timeout={cull['timeout']}"] if cull["timeout"] else []
    command += [f"--cull-every={cull['every']}"] if cull["every"] else []
    command += ["--cull-users"] if cull["users"] else []
    command += [] if cull["adminUsers"] else ["--cull-admin-users=false"]
    return command


def secret_files(values: Mapping) -> dict[str, str]:
    """What the chart's singleuser Secret holds: each extraFiles key with its text."""
    files = helm_merge(DEFAULTS, values)["singleuser"].get("extraFiles") or {}
    return {key: file["stringData"] for key, file in files.items()}
