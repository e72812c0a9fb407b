"""`hubctl k8s-values`: the platform's settings as a values file of the Zero to
JupyterHub chart (pinned to CHART_VERSION), for a lab that moves to Kubernetes.

Each setting of the schema is either carried (CARRIED: where it lands) or not
(NOT_CARRIED: why); profiles become ``singleuser.profileList`` with their
overrides translated to KubeSpawner's. What the chart cannot express is refused
(K8sValuesError) or named in a Note, printed to stderr and written as a comment
atop the file: nothing is dropped silently. Needs no hub: it reads the settings
(as the hub does) and the conda configuration of the single-user image.
"""

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jupyterhub.spawner import Spawner
from traitlets.config import Config

from .. import configure, profiles
from ..auth.oauth import CLASSES
from ..providers import NATIVE
from ..settings import ENV_PREFIX, SCHEMA, SETTINGS_FILE_ENV, SettingsError, load_settings
from ..sizes import parse_size
from ..spawner import GPUDockerSpawner

CHART_VERSION = "4.4.0"  # jupyterhub/zero-to-jupyterhub-k8s; tests/data/z2jh-4.4.0 holds its schema
GPU_RESOURCE = "nvidia.com/gpu"  # what the NVIDIA device plugin advertises
# Every user container runs as 1000:100 (GPUDockerSpawner's platform create kwargs).
USER_UID, USER_GID = 1000, 100
# Where the single-user images keep the system-wide .condarc (images/*/Dockerfile).
CONDARC_PATH = "/etc/conda/.condarc"
CHECKOUT_CONDARC = Path(__file__).resolve().parents[2] / "kernels" / "condarc"
SHM_VOLUME = "shm"
HOME_MOUNT = GPUDockerSpawner.class_traits()["home_mount"].default_value
# The hub's authenticator -> the name of the chart hub image's one that stands in for it.
AUTHENTICATORS = {"spawner.auth.PlatformAuthenticator": "native"}
PULL_POLICIES = {"ifnotpresent": "IfNotPresent", "always": "Always", "never": "Never", "skip": "Never"}

CARRIED = {
    "admin_users": "hub.config.Authenticator.admin_users",
    "image": "singleuser.image",
    "pull_policy": "singleuser.image.pullPolicy",
    "mem_limit": "singleuser.memory (limit and guarantee)",
    "cpu_limit": "singleuser.cpu (limit and guarantee)",
    "shm_size": "singleuser.storage.extraVolumes.shm (a memory-backed emptyDir at /dev/shm)",
    "profiles": "singleuser.profileList",
    "isolate_servers": "singleuser.networkPolicy",
    "idle_timeout": "cull",
    "log_level": "hub.config.JupyterHub.log_level",
    "public_url": "hub.config.JupyterHub.public_url",
    "auth": "hub.config (the native sign-in; an identity provider is refused)",
}
NOT_CARRIED = {
    "prefix": "names Docker objects; the chart names its own",
    "network": "a Docker network; pods talk over the cluster's network",
    "hub_connect_host": "the chart's hub Service is what pods connect to",
    "data_dir": "the chart keeps the hub's database on its own volume (hub.db)",
    "allowed_images": "KubeSpawner has no image allow-list: offer images as choices of a profile option",
    "shared_data": "a host path or Docker volume; mount a PersistentVolumeClaim with "
    "singleuser.storage.extraVolumes and extraVolumeMounts instead",
    "gpus": "the NVIDIA device plugin finds each node's GPUs",
    "gpu_mode": "the NVIDIA device plugin and container toolkit pass GPUs to pods",
    "gpu_runtime": "the NVIDIA device plugin and container toolkit pass GPUs to pods",
    "gpu_quota": "KubeSpawner has no per-user GPU quota (a ResourceQuota bounds a whole namespace)",
    "gpu_group_quotas": "KubeSpawner has no per-group GPU quota",
    "engine": "the chart's KubeSpawner: Kubernetes is the engine",
    "workspace_nfs": "homes are the chart's per-user PVCs (singleuser.storage); an NFS StorageClass can back them",
    "gpu_idle_timeout": "GPU-idle reclaim is a service of the Docker hub (it reads leases from container labels)",
    "gpu_idle_threshold": "GPU-idle reclaim is a service of the Docker hub",
    "gpu_idle_warning": "GPU-idle reclaim is a service of the Docker hub",
    "gpu_idle_exempt_admins": "GPU-idle reclaim is a service of the Docker hub",
    "gpu_idle_exempt_group": "GPU-idle reclaim is a service of the Docker hub",
    "gpu_samples_file": "GPU-idle reclaim is a service of the Docker hub",
    "workspace_soft_limit": "a PersistentVolumeClaim has a hard size (singleuser.storage.capacity)",
}

# Runs at the end of the chart's jupyterhub_config.py (hub.extraConfig), where
# ``c`` is the hub's configuration: KubeSpawner has no admin_only, so the list
# becomes a function of the spawner. A fixed text: no setting is ever put in it.
ADMIN_ONLY_CONFIG = """\
def _gpuhub_profiles(spawner, offered=c.KubeSpawner.profile_list):
    return [p for p in offered if spawner.user.admin or not p.get("admin_only")]
c.KubeSpawner.profile_list = _gpuhub_profiles
"""


class K8sValuesError(ValueError):
    """Settings the chart cannot express; nothing is written."""


@dataclass(frozen=True)
class Note:
    """Something of the settings that does not reach the chart, and why."""

    key: str
    why: str

    def __str__(self) -> str:
        return f"{self.key}: {self.why}"


def k8s_quantity(size: str | int) -> str:
    """A size of ours (1024-based, as Docker reads it) as a Kubernetes quantity: ``2G`` -> ``2Gi``."""
    text = parse_size(size)
    return text + "i" if text[-1].isalpha() else text


def shm_volume(size: str | int) -> dict[str, Any]:
    return {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(size)}}


def _image(image: str) -> dict[str, str]:
    """name and tag as the chart joins them again (``name:tag``); untagged is Docker's ``latest``."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the colon was a registry's port
        return {"name": image, "tag": "latest"}
    return {"name": name, "tag": tag}


_SPAWNER_TRAITS = frozenset(Spawner.class_traits(config=True))


def _override(override: Mapping[str, Any], where: str, all_gpus: int | None, notes: list[Note]) -> dict[str, Any]:
    """A spawner_override of ours as a kubespawner_override. ``gpus`` always yields both the GPU
    limit and NVIDIA_VISIBLE_DEVICES (void without GPUs, as on one host), each unset where the
    other applies, so a choice's count replaces its profile's."""
    result: dict[str, Any] = {}
    for key, value in override.items():
        if key == "gpus":
            count = all_gpus if value == "all" else value
            gpu_env = None if count else "void"
            result = profiles.merge(result, {"extra_resource_limits": {GPU_RESOURCE: count or None},
                                             "environment": {"NVIDIA_VISIBLE_DEVICES": gpu_env}})  # fmt: skip
        elif key in ("mem_limit", "cpu_limit"):
            # Guaranteed as much as allowed: the scheduler places a server only where its limits are free.
            result[key] = result[key.replace("limit", "guarantee")] = value
        elif key == "shm_size":
            result["volumes"] = {SHM_VOLUME: shm_volume(value)}
        elif key == "gpu_shared":
            if value:
                notes.append(Note(f"{where} gpu_shared", "not carried: a pod asks for whole GPUs; sharing one is "
                                  "the device plugin's configuration (time-slicing, MIG)"))  # fmt: skip
        elif key == "image" or key in _SPAWNER_TRAITS:
            result = profiles.merge(result, {key: value})  # JupyterHub's own settings mean the same to KubeSpawner
        else:
            raise K8sValuesError(
                f"{where}: {key!r} is a setting of the Docker spawner with no KubeSpawner equivalent; "
                "remove it, and write the profile's kubespawner_override in the values file by hand"
            )
    return result


def profile_list(raw: list, all_gpus: int | None, notes: list[Note]) -> list[dict[str, Any]]:
    """Our profiles (the built-in set when empty) in KubeSpawner's profile_list shape; what the hub
    refuses in a profile, this refuses with the hub's message."""
    try:
        checked = GPUDockerSpawner()._checked_profiles(raw)
    except profiles.ProfileError as e:
        raise K8sValuesError(str(e)) from None
    result = []
    for profile in checked:
        where = f"profile {profile['slug']!r}"
        layers = [profile["spawner_override"]] + [
            choice["spawner_override"] for option in profile["profile_options"].values()
            for choice in option["choices"].values()
        ]  # fmt: skip
        if all_gpus is None and any(layer.get("gpus") == "all" for layer in layers):
            notes.append(Note(where, 'left out: it asks for "all" GPUs, and a pod asks for a count '
                              "(pass --all-gpus N, the GPUs of your largest node)"))  # fmt: skip
            continue
        entry = {
            "display_name": profile["display_name"],
            "slug": profile["slug"],
            "description": profile["description"],
            "default": profile["default"],
            # gpus 0 unless the profile says otherwise, as on one host
            "kubespawner_override": _override({"gpus": 0, **profile["spawner_override"]}, where, all_gpus, notes),
        }
        if profile.get("idle_timeout") is not None:
            notes.append(Note(where, "idle_timeout left out: the chart's culler has one timeout (cull.timeout)"))
        if profile["admin_only"]:
            entry["admin_only"] = True  # read by ADMIN_ONLY_CONFIG
        if profile["profile_options"]:
            entry["profile_options"] = {
                name: {
                    "display_name": option["display_name"],
                    "choices": {
                        key: {
                            "display_name": choice["display_name"],
                            "default": choice["default"],
                            "kubespawner_override": _override(
                                choice["spawner_override"], f"{where} option {name!r} choice {key!r}", all_gpus, notes
                            ),
                        }
                        for key, choice in option["choices"].items()
                    },
                }
                for name, option in profile["profile_options"].items()
            }
        result.append(entry)
    if not result:
        raise K8sValuesError("no profile is left to offer: " + "; ".join(map(str, notes)))
    return result


def authenticator(settings: Mapping[str, Any], notes: list[Note]) -> dict[str, dict[str, Any]]:
    """``hub.config`` sections of the hub's login configuration (``configure``), for the chart's hub.

    Sections of the authenticators the chart's hub image has are carried as they are;
    ours (PlatformAuthenticator: invitations, the first admin made at start, the name
    rule, the login lockout) is not in that image: NativeAuthenticator stands in for it.
    """
    provider = settings["auth"]["provider"]
    if provider != NATIVE:
        return provider_authenticator(settings, notes)
    c = Config()
    configure._login(settings, c)
    sections: dict[str, dict[str, Any]] = {}
    for section, traits in c.items():
        if section == "JupyterHub":
            kept = {
                "authenticator_class": AUTHENTICATORS.get(traits["authenticator_class"], traits["authenticator_class"])
            }
            dropped = sorted(set(traits) - set(kept))
            if dropped:
                notes.append(Note(f"JupyterHub.{', '.join(dropped)}", "not carried: the platform's own login pages"))
            sections[section] = kept
        elif section.startswith("Platform"):
            notes.append(Note(section, "not carried: not in the chart's hub image; NativeAuthenticator's sign-up "
                              "and approval apply, and the first admin signs up under their name: do that "
                              "before anyone else can reach the hub"))  # fmt: skip
        else:
            sections[section] = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in traits.items()}
    return sections


# The chart's hub reads the client secret from this Kubernetes Secret (kubectl create secret ...).
OAUTH_SECRET = {"name": "gpuhub-oauth", "key": "client-secret"}


def provider_authenticator(settings: Mapping[str, Any], notes: list[Note]) -> dict[str, dict[str, Any]]:
    """``hub.config`` for an identity provider: oauthenticator's own class (the chart's hub image
    has it, not ours) with the hub's traits; the client secret stays in a Kubernetes Secret."""
    ours = CLASSES[settings["auth"]["provider"]]
    upstream = next(cls for cls in ours.__mro__ if cls.__module__.startswith("oauthenticator."))
    c = Config()
    configure.oauth_traits(settings["auth"], settings["public_url"], c[upstream.__name__])
    traits = dict(c[upstream.__name__])
    if traits.pop("issuer", ""):
        notes.append(Note("auth.issuer", "not carried: the platform's ID-token issuer check is not in oauthenticator"))
    notes.append(
        Note(
            "auth",
            "the platform's username rule and its refusal of names that had a hub password are not carried; "
            f"the client secret is read from the Secret {OAUTH_SECRET['name']} (key {OAUTH_SECRET['key']}): "
            f"kubectl create secret generic {OAUTH_SECRET['name']} --from-literal={OAUTH_SECRET['key']}=...",
        )
    )
    auth = settings["auth"]
    users = {"admin_users": sorted(settings["admin_users"])}
    users.update({key: sorted(auth[key]) for key in ("allowed_users", "blocked_users") if key in auth})
    return {
        "JupyterHub": {"authenticator_class": f"{upstream.__module__}.{upstream.__name__}"},
        # the chart generates and keeps CryptKeeper.keys itself
        "Authenticator": {**users, "enable_auth_state": True},
        upstream.__name__: {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in traits.items()},
    }


def culler(idle_timeout: int) -> dict[str, Any]:
    """cull: as the hub's idle-culler service (configure), which culls admins' servers too."""
    if not idle_timeout:
        return {"enabled": False}
    every = max(5, min(300, idle_timeout // 4))  # configure's: a server outlives its timeout by a quarter at most
    return {"enabled": True, "timeout": idle_timeout, "every": every, "adminUsers": True, "users": False}


def k8s_values(
    settings: Mapping[str, Any], condarc: str, *, all_gpus: int | None = None, home_size: str = "10G"
) -> tuple[dict[str, Any], list[Note]]:
    """The chart's values for ``settings`` (from load_settings), and what did not carry over."""
    notes = [
        Note(key, f"not carried ({why})") for key, why in NOT_CARRIED.items() if settings[key] != SCHEMA[key].default
    ]
    profile_entries = profile_list(settings["profiles"], all_gpus, notes)
    hub: dict[str, Any] = {"config": authenticator(settings, notes)}
    if settings["auth"]["provider"] != NATIVE:  # oauthenticator reads OAUTH_CLIENT_SECRET itself
        hub["extraEnv"] = {"OAUTH_CLIENT_SECRET": {"valueFrom": {"secretKeyRef": OAUTH_SECRET}}}
    hub["config"]["JupyterHub"]["log_level"] = settings["log_level"].upper()
    if settings.get("public_url"):
        hub["config"]["JupyterHub"]["public_url"] = settings["public_url"]
    hub["config"]["KubeSpawner"] = {
        "gid": USER_GID,
        # what the platform's cap_drop gives a container, and Docker's default seccomp profile
        "container_security_context": {"capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if any(entry.get("admin_only") for entry in profile_entries):
        hub["extraConfig"] = {"gpuhub-admin-only-profiles": ADMIN_ONLY_CONFIG}
    isolate = settings["isolate_servers"]
    singleuser = {
        "image": {**_image(settings["image"]), "pullPolicy": PULL_POLICIES[settings["pull_policy"]]},
        "uid": USER_UID,
        "fsGid": USER_GID,
        "allowPrivilegeEscalation": False,
        "memory": {"limit": settings["mem_limit"], "guarantee": settings["mem_limit"]},
        "cpu": {"limit": settings["cpu_limit"], "guarantee": settings["cpu_limit"]},
        "storage": {
            "type": "dynamic",
            "capacity": k8s_quantity(home_size),
            "homeMountPath": HOME_MOUNT,
            "extraVolumes": {SHM_VOLUME: shm_volume(settings["shm_size"])},
            "extraVolumeMounts": {SHM_VOLUME: {"name": SHM_VOLUME, "mountPath": "/dev/shm"}},
        },
        "extraFiles": {"condarc": {"mountPath": CONDARC_PATH, "stringData": condarc}},
        # isolate_servers: a user's pod takes no traffic but the hub's and the proxy's, and
        # reaches no private address (another user's pod); without it, no policy at all.
        "networkPolicy": {"enabled": isolate, **({"egressAllowRules": {"privateIPs": False}} if isolate else {})},
        "profileList": profile_entries,
    }
    return {"hub": hub, "singleuser": singleuser, "cull": culler(settings["idle_timeout"])}, notes


class _Dumper(yaml.SafeDumper):
    """Multi-line text (the .condarc) as a literal block, readable as the file it becomes."""

    def represent_str(self, data: str):
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _Dumper.represent_str)


def render(values: Mapping[str, Any], notes: list[Note], source: str) -> str:
    """The values file: a header saying what it is for and what did not carry over, then YAML."""
    lines = [
        f"# Zero to JupyterHub {CHART_VERSION} values, from {source} by `hubctl k8s-values`.",
        f"#   helm upgrade --install jupyterhub jupyterhub/jupyterhub --version {CHART_VERSION} --values FILE",
        "# Carried over:",
        *(f"#   {key} -> {where}" for key, where in CARRIED.items()),
        "# Not carried over:",
        *(f"#   {key}: {why}" for key, why in NOT_CARRIED.items()),
        *(f"#   {note}" for note in notes if note.key not in NOT_CARRIED),
    ]
    return "\n".join(lines) + "\n" + yaml.dump(dict(values), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def cmd_k8s_values(api, args) -> str:
    # the variables compose hands the hub: GPUHUB_<KEY> of the schema's keys (others, such as
    # GPUHUB_TAG, are the scripts')
    names = {SETTINGS_FILE_ENV, *(ENV_PREFIX + key.upper() for key in SCHEMA)}
    environ = {name: value for name, value in os.environ.items() if name in names}
    if args.settings:
        environ[SETTINGS_FILE_ENV] = args.settings
    try:
        with open(args.condarc, encoding="utf-8") as f:
            condarc = f.read()
    except OSError as e:
        raise SystemExit(
            f"ERROR: cannot read the conda configuration {args.condarc}: {e.strerror} (--condarc)"
        ) from None
    try:
        values, notes = k8s_values(load_settings(environ), condarc, all_gpus=args.all_gpus, home_size=args.home_size)
    except (SettingsError, K8sValuesError) as e:
        raise SystemExit(f"ERROR: {e}") from None
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return render(values, notes, environ.get(SETTINGS_FILE_ENV) or "the default settings")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of GPUs, got {text!r}")
    return int(text)


def _size(text: str) -> str:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "k8s-values",
        help=f"print the settings as values of the Zero to JupyterHub chart {CHART_VERSION} (no hub needed)",
    )
    p.add_argument("--settings", help=f"settings file (default: ${SETTINGS_FILE_ENV}, else the defaults)")
    p.add_argument("--condarc", default=str(CHECKOUT_CONDARC), help="conda configuration (default: kernels/condarc)")
    p.add_argument("--all-gpus", type=_count, help='GPUs a profile asking for "all" gets (default: leave it out)')
    p.add_argument("--home-size", type=_size, default="10G", help="size of each user's home volume (default: 10G)")
    p.set_defaults(func=cmd_k8s_values, needs_hub=False)
