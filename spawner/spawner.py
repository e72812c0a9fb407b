"""GPUDockerSpawner: DockerSpawner plus profiles, GPU leases, limits and a
workspace that outlives every container.

Docker is the source of truth for GPU leases (DESIGN.md, decision 1): the
lease is a set of labels on the user's container, and the free set is computed
from the containers that exist, under a lock held from allocation to creation.
"""

import asyncio
import functools
import os
import socket
from datetime import datetime, timezone
from urllib.parse import urlparse

import docker
from dockerspawner import DockerSpawner
from traitlets import Bool, CaselessStrEnum, Float, Int, List, TraitError, Unicode, default, validate

from . import inventory, leases, networks, readiness, startqueue, workspaces
from .common import GPUSpawnerMixin, user_error
from .labels import LABEL_ACCOUNT, LABEL_PROFILE, owner_labels
from .overrides import UnderPlatform
from .settings import GPU_MODES
from .sizes import human, parse_size, size_bytes

# One hub process, one event loop: an asyncio lock serialises every
# allocate-and-create so that concurrent spawns never race for a device.
_allocation_lock = asyncio.Lock()


def _literal(text: str) -> str:
    """``text`` escaped for DockerSpawner's template rendering (``str.format``
    over extra_create_kwargs), which then gives it back verbatim: a username
    such as ``{servername}`` must not be filled in."""
    return text.replace("{", "{{").replace("}", "}}")


@functools.lru_cache(maxsize=4)
def _discover(gpu_ids: tuple[str, ...]) -> list[inventory.Gpu]:
    return inventory.discover(list(gpu_ids))


class GPUDockerSpawner(GPUSpawnerMixin, DockerSpawner):
    """Spawn each user's server in its own container with its own GPUs."""

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

    pids_limit = Int(
        8192,
        config=True,
        help="""Most processes and threads in one user container, so a fork
        bomb cannot exhaust the host's PIDs (0: no limit). Raise it for many
        DataLoader workers on big hosts, e.g. ``c.GPUDockerSpawner.pids_limit = 16384``.
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

    ready_poll_interval = Float(
        0.05,
        config=True,
        help="""Seconds between checks, after the container starts, of whether the
        server answers HTTP; start() returns when it does, so the hub's own
        check (jittered backoff, up to seconds late) finds it up at once. A
        check before the server listens is a refused connection, so the
        default of 0.05 s costs the hub next to nothing. 0:
        leave it to the hub alone, as stock DockerSpawner does, e.g.
        ``c.GPUDockerSpawner.ready_poll_interval = 0.25``.
        """,
    )

    @validate("ready_poll_interval")
    def _validate_ready_poll_interval(self, proposal):
        if proposal.value < 0:
            raise TraitError(f"ready_poll_interval must be 0 or more seconds, not {proposal.value}")
        return proposal.value

    start_concurrency = Int(
        config=True,
        help="""Most servers of this hub that boot at once; the others wait their
        turn, in order, with a progress message saying how many are ahead. A
        boot is CPU work, so when a whole class presses "Start" together, turns
        make the first servers ready in seconds instead of all of them at the
        end. A slot is held until the server answers (at most 10 s); 0: no
        limit, as stock DockerSpawner (also when ``ready_poll_interval`` is 0).
        Default: twice the host's CPUs (part of a boot waits on the engine,
        not the CPU), e.g.
        ``c.GPUDockerSpawner.start_concurrency = 4``.
        """,
    )

    @default("start_concurrency")
    def _default_start_concurrency(self):
        return 2 * (os.cpu_count() or 1)

    @validate("start_concurrency")
    def _validate_start_concurrency(self, proposal):
        if proposal.value < 0:
            raise TraitError(f"start_concurrency must be 0 or more servers, not {proposal.value}")
        return proposal.value

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

    # -- GPU inventory and leases ------------------------------------------

    async def gpu_inventory(self):
        """The host's GPUs, discovered once per hub process, off the event loop (NVML and
        nvidia-smi block). ValueError when gpu_ids names a device that is not there."""
        return await asyncio.to_thread(_discover, tuple(self.gpu_ids))

    async def current_leases(self):
        containers = await self.docker("containers", all=True, filters={"label": leases.LABEL_GPUS})
        found = leases.named_labels(containers)
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
            raise user_error(503, e.message(viewer_is_admin=self.user.admin)) from None

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

    async def _claim_workspace(self):
        labels = self._workspace_labels()
        volume = await self.docker("create_volume", name=self.workspace_volume, labels=labels)
        owner = (volume.get("Labels") or {}).get(LABEL_ACCOUNT)
        if owner and owner != labels[LABEL_ACCOUNT]:  # create_volume hands back an existing volume as it is
            raise user_error(
                409,
                f"A workspace of an earlier account named {self.user.name!r} still exists; it is never handed "
                "to a new account. An admin archives it with `hubctl workspaces archive` and can then restore it.",
            )

    async def _warn_over_soft_limit(self):
        """A progress message when the workspace is over ``workspace_soft_limit``; advisory:
        a size the engine cannot give now is logged and the spawn goes on."""
        try:
            used = (await asyncio.to_thread(workspaces.shared_volume_sizes, self.client)).get(self.workspace_volume)
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

    _release_start_slot = None  # while this server holds a start slot

    async def start_object(self):
        if self.start_concurrency and self.ready_poll_interval:
            queue = startqueue.for_this_loop(self.start_concurrency)
            if ahead := queue.ahead():
                servers = "1 server is" if ahead == 1 else f"{ahead} servers are"
                self._event(f"Waiting for your turn: {servers} starting ahead of yours (at most {queue.size} at once)")
            self._release_start_slot = await queue.take()
        await super().start_object()

    async def start(self):
        self._leased = ()
        try:
            ip, port = await super().start()
            if self.ready_poll_interval:
                path = None if self.internal_ssl else f"{self.server.base_url}api"  # the version: no login needed
                await readiness.wait_until_serving(
                    ip, port, path, self.http_timeout, self.ready_poll_interval, self._running
                )
        finally:
            release, self._release_start_slot = self._release_start_slot, None
            if release:
                release()
        return ip, port

    async def _running(self) -> bool:
        return await self.poll() is None
