"""GPUDockerSpawner: DockerSpawner plus profiles, GPU leases, limits and a
workspace that outlives every container.

Docker is the source of truth for GPU leases (DESIGN.md, decision 1): the
lease is a set of labels on the user's container, and the free set is computed
from the containers that exist, under a lock held from allocation to creation.
"""

import asyncio
import functools
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import urlparse

import docker
from dockerspawner import DockerSpawner
from jupyterhub.traitlets import Callable
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Any, Bool, CaselessStrEnum, Dict, Float, Int, List, TraitError, Unicode, Union, default, validate

from . import availability, inventory, leases, networks, overrides, profiles, readiness, workspaces
from .labels import LABEL_ACCOUNT, LABEL_PROFILE, owner_labels
from .messages import shown
from .names import WORKSPACE_VOLUME, safe_slug
from .overrides import UnderPlatform
from .settings import GPU_MODES
from .sizes import human, parse_size, size_bytes

# One hub process, one event loop: an asyncio lock serialises every
# allocate-and-create so that concurrent spawns never race for a device.
_allocation_lock = asyncio.Lock()


def _user_error(status: int, message: str) -> web.HTTPError:
    """An error whose message JupyterHub's pages show as it is (cut short: it may echo user input)."""
    message = message if len(message) <= 1000 else message[:999] + "…"
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message
    return error


def _literal(text: str) -> str:
    """``text`` escaped for DockerSpawner's template rendering (``str.format``
    over extra_create_kwargs), which then gives it back verbatim: a username
    such as ``{servername}`` must not be filled in."""
    return text.replace("{", "{{").replace("}", "}}")


@functools.lru_cache(maxsize=4)
def _discover(gpu_ids: tuple[str, ...]) -> list[inventory.Gpu]:
    return inventory.discover(list(gpu_ids))


class GPUDockerSpawner(DockerSpawner):
    """Spawn each user's server in its own container with its own GPUs."""

    profile_list = Union(
        [List(), Callable()],
        config=True,
        help="""Profiles offered on the spawn page, in KubeSpawner's shape.

        Each has display_name, slug, description, default, admin_only,
        spawner_override (or kubespawner_override) and profile_options, whose
        choices have a spawner_override each. An override sets settings of this
        spawner by name (gpus, gpu_shared, mem_limit, cpu_limit, shm_size, image,
        environment, volumes, cmd, extra_host_config...) for one spawn: a dict
        is merged key by key onto the configured value (None removes a key),
        anything else replaces it, and the next spawn starts from the configured
        values again. A name that is not a setting, or one the platform keeps
        (hub scopes and hooks, GPU leasing, isolation, names, pids and log
        limits: NOT_IN_PROFILES), is refused when the configuration is loaded,
        naming the profile and key. What wins: the platform's settings
        (cap_drop ALL, no-new-privileges, pids_limit, log_config, shm_size, GPU
        devices, user 1000:100, gpuhub.* labels, NVIDIA_VISIBLE_DEVICES,
        NVIDIA_DRIVER_CAPABILITIES, CUDA_VISIBLE_DEVICES) over the profile's,
        the profile's over the site's. May be a callable taking the spawner,
        sync or async; its result is checked at each use, and a broken one is
        a server error (HTTP 500). Empty: the built-in CPU / 1 GPU / 2 GPUs /
        all GPUs set. Example::

            c.GPUDockerSpawner.profile_list = [{"display_name": "1 GPU",
                "slug": "gpu-1", "spawner_override": {"gpus": 1,
                "environment": {"WANDB_MODE": "offline"}}}]
        """,
    )

    @default("profile_list")
    def _default_profile_list(self):
        return profiles.DEFAULT_PROFILES

    @validate("profile_list")
    def _validate_profile_list(self, proposal):
        if callable(proposal.value):
            return proposal.value
        try:
            return self._checked_profiles(proposal.value)
        except profiles.ProfileError as e:
            raise TraitError(f"{type(self).__name__}.profile_list: {e}") from None

    @classmethod
    def check_config(cls, config) -> None:
        """TraitError, naming the profile and key, if ``config``'s static profile_list is
        broken: jupyterhub_config.py calls it last, so that a bad profile stops the hub at
        start rather than a user's spawn (JupyterHub makes spawners only when needed)."""
        sections = [config[klass.__name__] for klass in cls.mro() if klass.__name__ in config]
        found = [section["profile_list"] for section in sections if "profile_list" in section]
        if found:  # the most specific class's section wins, as in traitlets
            cls().profile_list = found[0]

    def _checked_profiles(self, value) -> list[dict]:
        """A profile_list as the spawner uses it, normalised; empty is the built-in set."""
        return profiles.normalize_profiles(value or profiles.DEFAULT_PROFILES, self._profile_key_problem)

    def _profile_key_problem(self, key: str, value) -> str | None:
        return overrides.key_problem(self, key, value)

    gpu_ids = List(
        Unicode(),
        config=True,
        help="""GPU ids to lease: the inventory where neither NVML nor
        nvidia-smi is present, else a filter of the devices they find.

        Indices, GPU- UUIDs or MIG- instance UUIDs, e.g.
        ``c.GPUDockerSpawner.gpu_ids = ["0", "1", "MIG-4f0c..."]``.
        """,
    )

    gpu_mode = CaselessStrEnum(
        GPU_MODES,
        default_value="device-requests",
        config=True,
        help="""How leased GPUs reach the container.

        ``device-requests`` (like ``docker run --gpus device=...``) or
        ``runtime`` (``runtime=nvidia`` + NVIDIA_VISIBLE_DEVICES, for hosts set
        up with nvidia-container-runtime), e.g.
        ``c.GPUDockerSpawner.gpu_mode = "runtime"``.
        """,
    )

    gpu_runtime = Unicode(
        "nvidia",
        config=True,
        help="""Name of the Docker runtime that passes GPUs through in
        ``gpu_mode = "runtime"``: the NVIDIA container runtime's name in
        /etc/docker/daemon.json, e.g. ``c.GPUDockerSpawner.gpu_runtime = "nvidia"``.
        """,
    )

    gpu_driver_capabilities = Unicode(
        "compute,utility",
        config=True,
        help="NVIDIA_DRIVER_CAPABILITIES of GPU containers, e.g. ``compute,utility,video``.",
    )

    gpu_quota = Int(
        None,
        allow_none=True,
        config=True,
        help="Most GPUs one user may hold; None is no limit. e.g. ``c.GPUDockerSpawner.gpu_quota = 2``.",
    )

    gpu_group_quotas = Dict(
        value_trait=Int(),
        config=True,
        help="""Per-group GPU maximum; a user gets the most generous of their
        groups' limits. e.g. ``c.GPUDockerSpawner.gpu_group_quotas = {"students": 1}``.
        """,
    )

    gpus = Int(
        0,
        config=True,
        help="GPUs this server leases; normally set by the chosen profile. e.g. ``1``.",
    )

    gpu_shared = Bool(
        False,
        config=True,
        help="Lease GPUs in shared mode (several users per device); set by a profile that opts in.",
    )

    shm_size = Unicode(
        "2G",
        config=True,
        help="""Size of /dev/shm. Docker's 64M default makes PyTorch DataLoader
        workers die with a bus error. e.g. ``c.GPUDockerSpawner.shm_size = "8G"``.
        """,
    )

    @validate("shm_size")
    def _validate_shm_size(self, proposal):
        return parse_size(proposal.value)

    pids_limit = Int(
        8192,
        config=True,
        help="""Most processes and threads in one user container, so a fork
        bomb cannot exhaust the host's PIDs (0: no limit). Raise it for many
        DataLoader workers on big hosts, e.g. ``c.GPUDockerSpawner.pids_limit = 16384``.
        """,
    )

    ready_poll_interval = Float(
        0.1,
        config=True,
        help="""Seconds between checks, after the container starts, of whether the
        server's port accepts connections; start() returns when it does, so the
        hub's own check (jittered backoff, up to seconds late) finds it up at
        once. 0: leave it to the hub alone, as stock DockerSpawner does, e.g.
        ``c.GPUDockerSpawner.ready_poll_interval = 0.25``.
        """,
    )

    @validate("ready_poll_interval")
    def _validate_ready_poll_interval(self, proposal):
        if proposal.value < 0:
            raise TraitError(f"ready_poll_interval must be 0 or more seconds, not {proposal.value}")
        return proposal.value

    container_log_config = Dict(
        {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
        config=True,
        help="""Docker logging of user containers: rotated, so one user cannot
        fill the disk that holds the hub's database, e.g.
        ``c.GPUDockerSpawner.container_log_config = {"type": "json-file",
        "config": {"max-size": "50m", "max-file": "2"}}``.
        """,
    )

    isolate_servers = Bool(
        False,
        config=True,
        help="""Give each server a Docker network of its own that only the hub
        joins: user containers reach the hub and the internet, never each
        other. Needs the hub itself in a container (``hub_container``); the
        servers' networks get subnets from ``server_subnets``. e.g.
        ``c.GPUDockerSpawner.isolate_servers = True``.
        """,
    )

    hub_container = Unicode(
        config=True,
        help="""The hub's own container (name or id), joined to every
        server's network when ``isolate_servers`` is on. Default: this host
        name, which Docker sets to the container id. e.g. ``"gpuhub-hub-1"``.
        """,
    )

    @default("hub_container")
    def _default_hub_container(self):
        return socket.gethostname()

    server_subnets = Unicode(
        "10.213.0.0/16",
        config=True,
        help="""Address pool of the servers' own networks (``isolate_servers``);
        must not overlap the lab's networks, e.g. ``"172.29.0.0/16"``.
        """,
    )

    server_subnet_prefixlen = Int(
        28,
        config=True,
        help="Size of each server's network cut from ``server_subnets``, e.g. ``28`` (16 addresses).",
    )

    home_mount = Unicode(
        "/home/jovyan",
        config=True,
        help="Where each user's workspace volume is mounted, e.g. ``/home/jovyan``.",
    )

    shared_data = Unicode(
        "",
        config=True,
        help="Host path or volume mounted read-only at ``shared_data_mount``, e.g. ``/srv/datasets``.",
    )

    shared_data_mount = Unicode(
        "/data",
        config=True,
        help="Mount point of ``shared_data`` in user containers, e.g. ``/data``.",
    )

    @default("escape")
    def _default_escape(self):
        return safe_slug

    @default("remove")
    def _default_remove(self):
        return True  # compute is disposable, the workspace volume is not

    @default("volumes")
    def _default_volumes(self):
        return {WORKSPACE_VOLUME: self.home_mount}

    workspace_soft_limit = Unicode(
        "",
        config=True,
        help="""Workspace size above which each spawn of its owner shows a warning in
        the progress messages (nothing is refused); empty: no limit. e.g.
        ``c.GPUDockerSpawner.workspace_soft_limit = "50G"``.
        """,
    )

    @validate("workspace_soft_limit")
    def _validate_workspace_soft_limit(self, proposal):
        return parse_size(proposal.value) if proposal.value else ""

    @property
    def workspace_volume(self):
        return self._render_templates(WORKSPACE_VOLUME)

    @default("read_only_volumes")
    def _default_read_only_volumes(self):
        return {self.shared_data: self.shared_data_mount} if self.shared_data else {}

    hide_gpu_profiles_without_gpus = Bool(
        True,
        config=True,
        help="""On a host without GPUs, leave the profiles that lease GPUs off the
        spawn page; False shows them, disabled, with the reason. REST requests for
        them are refused either way. e.g.
        ``c.GPUDockerSpawner.hide_gpu_profiles_without_gpus = False``.
        """,
    )

    @default("options_form")
    def _default_options_form(self):
        async def options_form(spawner):
            configured = await spawner._profiles()
            offers = await spawner.offers(configured)
            return profiles.render_form(configured, is_admin=spawner.user.admin, offers=offers)

        return options_form

    async def offers(self, configured) -> list[availability.Offer]:
        """The profiles this user may see now, each with its free GPUs, quota and, when it
        cannot start, why (availability.offers); the spawn page shows the latter disabled."""
        try:
            devices = await self.gpu_inventory()
        except ValueError as e:
            raise self._site_error(f"gpu_ids: {e}") from None
        groups = self._group_names()
        gpus = availability.pool(
            [gpu.id for gpu in devices],
            await self.current_leases(),
            user_limit=self.gpu_quota,
            group_limits=self.gpu_group_quotas,
            groups=groups,
        )
        return availability.offers(
            configured,
            gpus,
            groups=groups,
            is_admin=self.user.admin,
            hide_gpu_profiles_without_gpus=self.hide_gpu_profiles_without_gpus,
        )

    def _group_names(self) -> list[str]:
        return [group.name for group in self.user.groups]

    @default("options_from_form")
    def _default_options_from_form(self):
        def options_from_form(formdata):
            try:
                return profiles.options_from_form(formdata)
            except profiles.ProfileError as e:
                raise _user_error(400, str(e)) from None

        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return GPUDockerSpawner._apply_profile

    # Site values of these two keep working; overrides merge onto them and the
    # platform's settings (security, shm, GPUs, labels) go on top at create time.
    @default("extra_host_config")
    def _default_extra_host_config(self):
        return UnderPlatform("_platform_host_config", {})

    @default("extra_create_kwargs")
    def _default_extra_create_kwargs(self):
        return UnderPlatform("_platform_create_kwargs", {})

    @validate("extra_host_config", "extra_create_kwargs")
    def _validate_site_config(self, proposal):
        if isinstance(proposal.value, UnderPlatform):
            return proposal.value
        platform = "_platform_host_config" if proposal.trait.name == "extra_host_config" else "_platform_create_kwargs"
        return UnderPlatform(platform, proposal.value)

    # -- profile chain: options -> validate -> apply ------------------------

    async def _profiles(self) -> list[dict]:
        """The profiles, normalised; a callable's result awaited and checked as a static list is."""
        value = self.profile_list
        if not callable(value):
            return value  # checked when configured
        try:
            return self._checked_profiles(await maybe_future(value(self)))
        except web.HTTPError:  # the callable's own answer, e.g. a 403 for this user
            raise
        except Exception as e:  # anything else it raises is the site's error
            raise self._site_error(f"profile_list: {e}") from e

    def _site_error(self, problem: str) -> web.HTTPError:
        """The site's configuration error: logged, and a 500 that does not blame the user."""
        self.log.error("Spawn of %s refused, configuration error: %s", self._log_name, problem)
        detail = f": {problem}" if self.user.admin else " (the hub's log says what)"
        return _user_error(500, f"The hub's configuration is broken; an admin must fix it{detail}")

    # JupyterHub 5 assigns a REST body here before anything checks it: one that
    # is not an object must reach _apply_profile and get a 400 there, not fail
    # as a TraitError (HTTP 500).
    user_options = Any(help="The spawn request's choices, checked by the profile chain.")

    _configured = Dict(help="Configured values of the settings this spawn overrides, put back before the next.")

    def _restore_configured(self):
        for key, value in self._configured.items():
            setattr(self, key, profiles.merge({}, value) if isinstance(value, Mapping) else value)
        self._configured = {}

    def clear_state(self):
        """JupyterHub's first step of every spawn, before any hook (and the last of every
        stop): the settings overridden for the last spawn get their configured values back."""
        super().clear_state()
        self._restore_configured()

    def _override(self, key, value):
        """Set ``key`` for this spawn: a dict merges onto the current value (None removes a key)."""
        current = getattr(self, key)
        self._configured.setdefault(key, current)
        if isinstance(current, UnderPlatform):
            value = current.with_override(value)
        elif isinstance(value, Mapping) and isinstance(current, Mapping):
            value = profiles.merge(current, value, drop_none=True)
        setattr(self, key, value)

    def _apply_overrides(self, spawner_override):
        """Each key onto the setting of that name, a callable called with the spawner (for
        the two Docker dicts: at create time). JupyterHub's hook for group_overrides, and ours."""
        for key, value in spawner_override.items():
            if callable(value) and not isinstance(getattr(self, key), UnderPlatform):
                value = value(self)
            self._override(key, value)

    async def _apply_profile(self, user_options):
        """Check the choice (a user's mistake: 400), then apply the chosen profile's overrides.

        The site's mistakes (a broken callable profile_list, gpu_ids naming no GPU) are a
        logged 500. Nothing is applied unless every check passes. The settings start from
        their configured values (clear_state), plus what hooks and group_overrides set.
        """
        configured = await self._profiles()
        try:
            devices = await self.gpu_inventory()
        except ValueError as e:
            raise self._site_error(f"gpu_ids: {e}") from None
        try:
            user_options, requested_image = self._split_image_request(configured, user_options)
            profile = profiles.validate_options(configured, user_options, is_admin=self.user.admin)
            not_yours = availability.group_problem(profile, self._group_names(), is_admin=self.user.admin)
            if not_yours:
                raise _user_error(403, f"Profile {profile['slug']!r} is {not_yours}; ask an admin")
            settings = profiles.resolve_overrides(profile, user_options)
            if requested_image is not None:
                settings["image"] = self._requested_image(requested_image)
            settings["gpus"] = profiles.resolve_gpu_count(settings["gpus"], len(devices))
            leases.check_quota(
                settings["gpus"],
                user_limit=self.gpu_quota,
                group_limits=self.gpu_group_quotas,
                groups=self._group_names(),
                is_admin=self.user.admin,
            )
            self._check_image(settings.get("image", self.image))
        except ValueError as e:
            raise _user_error(400, str(e)) from None
        try:
            self._apply_overrides(settings)
        except Exception as e:  # a value the site's callable made, or one the trait refuses
            raise self._site_error(f"profile {profile['slug']!r}: {e}") from e
        self.log.info("%s: profile %s, %d GPU(s), image %s", self._log_name, profile["slug"], self.gpus, self.image)
        self._profile_slug = profile["slug"]

    def _split_image_request(self, configured, user_options):
        """(options, image) where ``image`` is DockerSpawner's own ``image`` request
        (a key of allowed_images), for a profile with no option of that name; else None."""
        if not isinstance(user_options, Mapping) or "image" not in user_options:
            return user_options, None
        rest = {key: value for key, value in user_options.items() if key != "image"}
        profile = profiles.validate_options(configured, rest, is_admin=self.user.admin)
        if "image" in profile["profile_options"]:
            return user_options, None
        return rest, user_options["image"]

    def _requested_image(self, choice):
        """An explicit image request, by DockerSpawner's rules (check_allowed)."""
        allowed = self._get_allowed_images()
        if not isinstance(choice, str):
            raise ValueError(f"image must be a string, got {shown(choice)}")
        if allowed == "*":
            return choice
        if not allowed:
            raise ValueError("Specifying image to launch is not allowed")
        if choice not in allowed:
            raise ValueError(f"Image {shown(choice)} is not in allowed_images: {', '.join(allowed)}")
        return allowed[choice]

    def _check_image(self, image):
        """The configured image is always allowed; ``allowed_images`` lists what else profiles may pick."""
        if image == self.image:
            return
        allowed = self._get_allowed_images()
        if allowed != "*" and image not in (allowed or {}).values():
            choices = ", ".join([self.image, *(allowed or {}).values()])
            raise ValueError(f"Image {image!r} is not allowed; allowed images: {choices}")

    async def check_allowed(self, image):
        # user_options["image"] (a profile choice or DockerSpawner's own image
        # request) was resolved and checked by _apply_profile.
        return self.image

    # -- GPU inventory and leases ------------------------------------------

    async def gpu_inventory(self):
        """The host's GPUs, discovered once per hub process, off the event loop (NVML and
        nvidia-smi block). ValueError when gpu_ids names a device that is not there."""
        return await asyncio.to_thread(_discover, tuple(self.gpu_ids))

    async def current_leases(self):
        containers = await self.docker("containers", all=True, filters={"label": leases.LABEL_GPUS})
        found = [(c["Names"][0].lstrip("/"), c["Labels"]) for c in containers]
        return leases.leases_from_containers(found, on_problem=self.log.warning)

    async def _lease_gpus(self, devices):
        try:
            return leases.allocate(
                [gpu.id for gpu in devices],
                await self.current_leases(),
                self.gpus,
                shared=self.gpu_shared,
            )
        except leases.NoGpuAvailable as e:
            raise _user_error(503, e.message(viewer_is_admin=self.user.admin)) from None

    # -- container creation --------------------------------------------------

    _leased = ()

    async def create_object(self):
        await self._claim_workspace()
        if self.workspace_soft_limit:
            await self._warn_over_soft_limit()
        if self.isolate_servers:
            await self._join_server_network()
        if not self.gpus:  # no lease, nothing to race for
            return await super().create_object()
        devices = await self.gpu_inventory()
        async with _allocation_lock:
            self._leased = await self._lease_gpus(devices)
            names = {gpu.id: gpu.name for gpu in devices}
            described = [f"{gid} ({names[gid]})" if names.get(gid) else gid for gid in self._leased]
            self._event(f"Leased GPU {', '.join(described)}")
            return await super().create_object()

    def _gpu_config(self):
        return leases.docker_gpu_config(
            list(self._leased), mode=self.gpu_mode, capabilities=self.gpu_driver_capabilities, runtime=self.gpu_runtime
        )

    # -- workspace: one volume per account, archived when the account goes ---

    def _account(self) -> str:
        """This account's creation time: tells it apart from a removed account of the same name."""
        created = getattr(self.user, "created", None)
        return created.isoformat() if created else ""

    async def _claim_workspace(self):
        labels = {**owner_labels(self.prefix, self.user.name), LABEL_ACCOUNT: self._account()}
        volume = await self.docker("create_volume", name=self.workspace_volume, labels=labels)
        owner = (volume.get("Labels") or {}).get(LABEL_ACCOUNT)
        if owner and owner != labels[LABEL_ACCOUNT]:  # create_volume hands back an existing volume as it is
            raise _user_error(
                409,
                f"A workspace of an earlier account named {self.user.name!r} still exists; it is never handed "
                "to a new account. An admin archives it with `hubctl workspaces archive` and can then restore it.",
            )

    async def _warn_over_soft_limit(self):
        """A progress message when the workspace is over ``workspace_soft_limit``; advisory:
        a size the engine cannot give now is logged and the spawn goes on."""
        try:
            used = (await asyncio.to_thread(workspaces.volume_sizes, self.client)).get(self.workspace_volume)
        except docker.errors.APIError as e:
            self.log.warning("Size of %s unknown, soft limit not checked: %s", self.workspace_volume, e.explanation)
            return
        limit = size_bytes(self.workspace_soft_limit)
        if used is not None and used > limit:
            self._event(
                f"Warning: your workspace uses {human(used)}, over the soft limit of {human(limit)}; "
                "please delete what you no longer need (old checkpoints, ~/.conda-pkgs)"
            )

    async def delete_forever(self):
        """The account is being removed: archive its workspace (the default server's call; named servers share it)."""
        if self.name:
            return
        archived = await asyncio.to_thread(
            workspaces.archive, self.client, self.image, self.workspace_volume, self.user.name, self.prefix,
            self.escaped_name,
        )  # fmt: skip
        if archived:
            self.log.info("Archived the workspace of %s as %s", self.user.name, archived)

    # -- network isolation: a network per server, joined only by the hub ----

    _hub_joined = False

    async def _join_server_network(self):
        self.network_name = name = self.object_name
        labels = owner_labels(self.prefix, self.user.name)
        for subnet in networks.candidate_subnets(name, self.server_subnets, self.server_subnet_prefixlen):
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            try:
                await self.docker("create_network", name, ipam=ipam, labels=labels, check_duplicate=True)
                break
            except docker.errors.APIError as e:
                if e.status_code == 409:  # left by a crash: reuse it
                    break
                if e.status_code != 403 or "overlaps" not in str(e.explanation):
                    raise
        else:
            raise RuntimeError(f"no free /{self.server_subnet_prefixlen} subnet left in {self.server_subnets}")
        await self._connect_hub(name)

    async def _connect_hub(self, network):
        alias = urlparse(self.hub.api_url).hostname
        try:
            await self.docker("connect_container_to_network", self.hub_container, network, aliases=[alias])
        except docker.errors.APIError as e:
            if e.status_code != 403 or "already exists" not in str(e.explanation):
                raise
        self._hub_joined = True

    async def _leave_server_network(self):
        network = self.object_name
        for call, args in (("disconnect_container_from_network", (self.hub_container, network)),
                           ("remove_network", (network,))):  # fmt: skip
            try:
                await self.docker(call, *args)
            except docker.errors.APIError as e:
                if e.status_code not in (404, 500):  # gone, or the hub was not connected
                    self.log.warning("Cleaning up network %s: %s", network, e.explanation)
        self._hub_joined = False

    async def poll(self):
        status = await super().poll()
        if status is None and self.isolate_servers and not self._hub_joined:
            await self._connect_hub(self.object_name)  # a new hub container after an upgrade
        return status

    async def stop(self, now=False):
        await super().stop(now)
        if self.isolate_servers:
            await self._leave_server_network()

    def _platform_host_config(self):
        host_config, _ = self._gpu_config()
        return {
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "shm_size": self.shm_size,
            "pids_limit": self.pids_limit or None,
            "log_config": self.container_log_config,
            **host_config,
        }

    _profile_slug = ""  # the chosen profile's, for accounting by profile (spawner/usage.py)

    def _platform_create_kwargs(self):
        labels = owner_labels(self.prefix, self.user.name)
        if self._profile_slug:
            labels[LABEL_PROFILE] = self._profile_slug
        if self._leased:
            labels.update(
                leases.lease_labels(self.user.name, self._leased, self.gpu_shared, datetime.now(timezone.utc))
            )
        return {"user": "1000:100", "labels": {key: _literal(value) for key, value in labels.items()}}

    def get_env(self):
        env = super().get_env()
        env.update(self._gpu_config()[1])
        return env

    # -- progress ----------------------------------------------------------

    spawn_events = List(help="Progress messages of the spawn under way.")

    def _event(self, message):
        self.spawn_events = [*self.spawn_events, {"message": message}]

    async def start(self):
        self.spawn_events = []
        self._leased = ()
        ip, port = await super().start()
        if self.ready_poll_interval:
            await readiness.wait_for_port(ip, port, self.http_timeout, self.ready_poll_interval, self._running)
        return ip, port

    async def _running(self) -> bool:
        return await self.poll() is None

    async def progress(self):
        sent = 0
        while True:  # JupyterHub stops iterating when the spawn finishes
            for event in self.spawn_events[sent:]:
                yield event
            sent = len(self.spawn_events)
            await asyncio.sleep(0.5)
