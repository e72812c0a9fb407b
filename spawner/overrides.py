"""What a profile may override, and how the two Docker dicts are layered: the
site's value, then the profile's overrides, then the platform's settings on top."""

import inspect
from collections.abc import Mapping

from dockerspawner import DockerSpawner
from traitlets import TraitError

from . import leases, profiles
from .labels import LABEL_DEPLOYMENT

# A profile may set any setting of the spawner but these. Users pick profiles, admins
# write them: the point is not to distrust the admin but that a profile never silently
# undoes what the platform promises every container. The site sets these for all.
_HUB = "it decides what servers may do in the hub; set it for the whole site"
_LEASES = "it decides how GPUs are found, counted and leased; set it for the whole site"
_APART = "it keeps user containers apart from the host, the hub and each other; set it for the whole site"
_NAMES = "leases and workspaces are found by the names it makes; set it for the whole site"
NOT_IN_PROFILES: dict[str, str] = {
    **dict.fromkeys(
        ("oauth_client_allowed_scopes", "oauth_roles", "server_token_scopes", "profile_list", "group_overrides",
         "options_form", "options_from_form", "apply_user_options", "pre_spawn_hook", "post_stop_hook",
         "auth_state_hook", "progress_ready_hook", "allowed_images", "hub_connect_url", "hub_ip_connect",
         "ssl_alt_names", "ssl_alt_names_include_local", "move_certs_image", "certs_volume_name"),
        _HUB,
    ),
    **dict.fromkeys(("gpu_ids", "gpu_mode", "gpu_runtime", "gpu_quota", "gpu_group_quotas"), _LEASES),
    **dict.fromkeys(
        ("pids_limit", "container_log_config", "isolate_servers", "hub_container", "server_subnets",
         "server_subnet_prefixlen", "network_name", "use_internal_ip", "use_internal_hostname", "host_ip", "links",
         "client_kwargs", "tls", "tls_verify", "tls_ca", "tls_cert", "tls_key", "tls_assert_hostname", "tls_config",
         "use_docker_client_env"),
        _APART,
    ),
    **dict.fromkeys(("prefix", "name_template", "escape", "format_volume_name"), _NAMES),
    # Swarm: what the service reserves, where it may run, how its workspace is mounted
    **dict.fromkeys(("gpu_resource_kind", "extra_resources_spec"), _LEASES),
    **dict.fromkeys(
        ("workspace_node", "extra_placement_spec", "volume_driver", "volume_driver_options"),
        "it decides on which node a workspace lives; set it for the whole site",
    ),
    **dict.fromkeys(("extra_container_spec", "extra_task_spec", "extra_endpoint_spec"), _APART),
    "remove": "a stopped container must go, or its labels keep its GPUs leased",
    "env_keep": "it copies the hub's own environment into the container",
    **dict.fromkeys(
        ("home_mount", "shared_data", "shared_data_mount"),
        "the workspace and shared-data mounts are the site's; a profile adds mounts with volumes or read_only_volumes",
    ),
    **{
        old: f"a deprecated alias of {new}, which a profile sets by its own name"
        for old, (new, _) in DockerSpawner._deprecated_aliases.items()
    },
}  # fmt: skip

# Keys of the two Docker dicts a profile may not set: the platform sets them (its
# value would win anyway: refused, not silently dropped), or they undo what it sets.
PLATFORM_SETS = "the platform sets it for every container"
NOT_IN_PROFILE_DOCKER: dict[str, dict[str, str]] = {
    "extra_host_config": {
        **dict.fromkeys(("cap_drop", "security_opt", "pids_limit", "log_config"), PLATFORM_SETS),
        "shm_size": f"{PLATFORM_SETS}, from the shm_size key: use that",
        **dict.fromkeys(
            ("device_requests", "devices", "device_cgroup_rules", "runtime"),
            "devices come only with a GPU lease (the gpus key)",
        ),
        **dict.fromkeys(("privileged", "cap_add", "userns_mode", "cgroupns"), "it grants what the platform takes away"),
        **dict.fromkeys(
            ("network_mode", "pid_mode", "ipc_mode", "uts_mode", "volumes_from", "links"),
            "it joins the host's or another container's namespaces",
        ),
        **dict.fromkeys(("port_bindings", "publish_all_ports"), "it publishes a port on the host"),
        "auto_remove": NOT_IN_PROFILES["remove"],
    },
    "extra_create_kwargs": {
        "user": "user containers run as uid 1000",
        "image": "the image comes from the image key, checked against allowed_images",
        "environment": "it replaces the whole environment, the platform's included: use the environment key",
        "host_config": "host settings go in extra_host_config, under the platform's",
        "networking_config": "it joins the host's or another container's namespaces",
        "name": _NAMES,
    },
}
# The prefix of the label names the platform writes, and reads leases from: "gpuhub.".
PLATFORM_LABELS = LABEL_DEPLOYMENT.partition(".")[0] + "."


async def _evaluated(spawner, value) -> dict:
    """A dict setting as DockerSpawner takes it: a dict, or a callable of the spawner (maybe async)."""
    value = spawner._eval_if_callable(value)
    return dict((await value if inspect.isawaitable(value) else value) or {})


class UnderPlatform:
    """extra_host_config or extra_create_kwargs as the spawner holds it: the site's value,
    this spawn's overrides merged onto it in order, the platform's settings on top.
    DockerSpawner calls it at create time (a callable setting, which may be async)."""

    def __init__(self, platform: str, site, overrides=()):
        self.platform, self.site, self.overrides = platform, site, tuple(overrides)

    def with_override(self, override) -> "UnderPlatform":
        return UnderPlatform(self.platform, self.site, (*self.overrides, override))

    async def __call__(self, spawner) -> dict:
        value = await _evaluated(spawner, self.site)
        for override in self.overrides:
            value = profiles.merge(value, await _evaluated(spawner, override), drop_none=True)
        return profiles.merge(value, getattr(spawner, self.platform)())


def key_problem(spawner, key: str, value) -> str | None:
    """Why a profile may not set ``spawner``'s setting ``key`` to ``value``; None when it may."""
    if key in NOT_IN_PROFILES:
        return f"{key!r} may not be set by a profile: {NOT_IN_PROFILES[key]}"
    trait = spawner.traits(config=True).get(key)
    if trait is None:
        return f"{key!r} is not a setting of {type(spawner).__name__}"
    if key in profiles.CHECKED_KEYS or callable(value) or (value is None and trait.allow_none):
        return None
    if isinstance(value, Mapping):
        refused = [(name, why) for name, why in NOT_IN_PROFILE_DOCKER.get(key, {}).items() if name in value]
        if key == "extra_create_kwargs":
            labels = [name for name in value.get("labels") or () if str(name).startswith(PLATFORM_LABELS)]
            refused += [(f"labels {name}", PLATFORM_SETS) for name in labels]
        if key == "environment":
            gpu_env = [name for name in leases.docker_gpu_config([])[1] if name in value]
            refused += [(name, "it comes with the GPU lease") for name in gpu_env]
        if refused:
            name, why = refused[0]
            return f"{key} {name!r} may not be set by a profile: {why}"
    try:
        trait.validate(spawner, value)
    except TraitError as e:
        return str(e)
    return None
