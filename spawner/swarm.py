"""GPUSwarmSpawner: the platform's profiles, quotas and progress on a Docker
Swarm (dockerspawner's SwarmSpawner), one service per user server.

GPUs are Swarm generic resources: the service reserves ``gpus`` of kind
``gpu_resource_kind`` and Swarm's scheduler picks the node and the devices
(DESIGN.md, decision 13); the spawner reads them back from the task. A task
Swarm cannot place is a refused spawn, its service removed.

Without shared storage (``volume_driver``) a workspace volume lives on one
node: the first node a user's server ran on is kept in the hub's state and
every later service of that user is constrained to it, so no empty second
workspace is ever made elsewhere.
"""

import asyncio
import shlex
from pprint import pformat

import docker
from docker.types import ContainerSpec, DriverConfig, EndpointSpec, Mount, Placement, Resources, TaskTemplate
from dockerspawner import SwarmSpawner
from traitlets import TraitError, Unicode, validate

from . import leases, swarmleases
from .common import GPUSpawnerMixin, user_error
from .labels import LABEL_DEPLOYMENT, owner_labels

# Task states before "running" (Swarm's own list, as SwarmSpawner waits on them).
_STARTING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}


class GPUSwarmSpawner(GPUSpawnerMixin, SwarmSpawner):
    """Spawn each user's server as a Swarm service; Swarm places it and assigns its GPUs."""

    gpu_resource_kind = Unicode(
        swarmleases.DEFAULT_KIND,
        config=True,
        help="""Kind of the generic resource that the nodes advertise for their GPUs
        (dockerd's ``node-generic-resources``, written by scripts/swarm-node-config);
        a server reserves ``gpus`` of it. e.g. ``c.GPUSwarmSpawner.gpu_resource_kind = "NVIDIA-GPU"``.
        """,
    )

    @validate("gpu_resource_kind")
    def _validate_kind(self, proposal):
        if not swarmleases.KIND.fullmatch(proposal.value):
            raise TraitError(f"gpu_resource_kind must be letters, digits, '_' or '-', got {proposal.value!r}")
        return proposal.value

    workspace_node = Unicode(
        help="Id of the Swarm node that holds this user's workspace volume (no shared storage); kept across stops."
    )

    def load_state(self, state):
        super().load_state(state)
        self.workspace_node = state.get("workspace_node", "")

    def get_state(self):
        state = super().get_state()
        if self.workspace_node:
            state["workspace_node"] = self.workspace_node
        return state

    @property
    def shared_storage(self) -> bool:
        return bool(self.volume_driver)

    # -- inventory and leases: the nodes and the tasks ---------------------

    async def _nodes(self):
        return await self.docker("nodes")

    async def gpu_inventory(self):
        """The GPUs of the nodes that can take servers now (ready and active)."""
        return [gpu for gpu in swarmleases.cluster_gpus(await self._nodes(), self.gpu_resource_kind) if gpu.usable]

    async def swarm_leases(self) -> list[swarmleases.SwarmLease]:
        services = await self.docker("services", filters={"label": f"{LABEL_DEPLOYMENT}={self.prefix}"})
        tasks = await self.docker("tasks", filters={"desired-state": "running"})
        return swarmleases.task_leases(tasks, services, await self._nodes(), self.gpu_resource_kind)

    async def current_leases(self):
        return [held.lease for held in await self.swarm_leases()]

    # -- the service ------------------------------------------------------------

    @property
    def mounts(self):
        """Named volumes as volumes (made by the node, labelled as on one host; through
        ``volume_driver`` when set), host paths as binds, and /dev/shm of ``shm_size``."""
        driver = None
        if self.volume_driver:
            options = self._render_templates(dict(self.volume_driver_options)) or None
            driver = DriverConfig(name=self.volume_driver, options=options)
        mounts = []
        for source, vol in self.volume_binds.items():
            named = not source.startswith("/")
            mounts.append(
                Mount(
                    target=vol["bind"],
                    source=source,
                    type="volume" if named else "bind",
                    read_only=vol["mode"] == "ro",
                    labels=self._workspace_labels() if named else None,
                    driver_config=driver if named else None,
                )
            )
        mounts.append(Mount(target="/dev/shm", source="", type="tmpfs", tmpfs_size=self.shm_size))
        return mounts

    def get_env(self):
        env = super().get_env()
        # NVIDIA_VISIBLE_DEVICES comes from Swarm's assignment at start (get_command).
        env.update(leases.docker_gpu_config([], capabilities=self.gpu_driver_capabilities)[1])
        if self.gpus:
            del env["NVIDIA_VISIBLE_DEVICES"]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(self.gpus))
        return env

    async def get_command(self):
        """The server's command; with GPUs, behind a step that exports the ids Swarm
        assigned (DOCKER_RESOURCE_<KIND>) as NVIDIA_VISIBLE_DEVICES, as on one host."""
        command = await super().get_command()
        if not self.gpus:
            return command
        # The variable's name has a "-", which sh drops from the environment it passes
        # on: it is read from the shell's own initial environment instead.
        pattern = shlex.quote(f"s/^{swarmleases.resource_env(self.gpu_resource_kind)}=//p")
        ids = f"$(tr '\\0' '\\n' </proc/$$/environ | sed -n {pattern})"
        step = f'NVIDIA_VISIBLE_DEVICES="{ids}"; export NVIDIA_VISIBLE_DEVICES; exec "$@"'
        return ["sh", "-c", step, "gpuhub-gpus", *command]

    def _constraints(self) -> list[str]:
        if self.workspace_node and not self.shared_storage:
            return [f"node.id=={self.workspace_node}"]
        return []

    async def create_object(self):
        container = ContainerSpec(
            image=self.image,
            env=self.get_env(),
            args=await self.get_command(),
            mounts=self.mounts,
            user="1000:100",
            cap_drop=["ALL"],
            labels=owner_labels(self.prefix, self.user.name),
            **self.extra_container_spec,
        )
        resources = Resources(
            mem_limit=self.mem_limit,
            mem_reservation=self.mem_guarantee,
            cpu_limit=int(self.cpu_limit * 1e9) if self.cpu_limit else None,
            cpu_reservation=int(self.cpu_guarantee * 1e9) if self.cpu_guarantee else None,
            generic_resources={self.gpu_resource_kind: self.gpus} if self.gpus else None,
            **self.extra_resources_spec,
        )
        task = TaskTemplate(
            container_spec=container,
            resources=resources,
            networks=[self.network_name] if self.network_name else [],
            placement=Placement(constraints=self._constraints() or None, **self.extra_placement_spec),
            # a server that dies is reported stopped, not started again somewhere else
            restart_policy=docker.types.RestartPolicy(condition="none"),
            log_driver=docker.types.DriverConfig(
                self.container_log_config.get("type", "json-file"), self.container_log_config.get("config")
            ),
            **self.extra_task_spec,
        )
        # The service's name resolves to its one task's address: no virtual IP, no IPVS.
        endpoint = EndpointSpec(**{"mode": "dnsrr", **self.extra_endpoint_spec})
        return await self.docker(
            "create_service",
            task_template=task,
            endpoint_spec=endpoint,
            name=self.service_name,
            labels=owner_labels(self.prefix, self.user.name),
            **self.extra_create_kwargs,
        )

    async def get_task(self):
        """The service's one task that should run (else its latest), found by service id."""
        if not self.object_id:
            return None
        try:
            tasks = await self.docker("tasks", filters={"service": self.object_id})
        except docker.errors.NotFound:  # the service is gone
            return None
        mine = [task for task in tasks if task.get("ServiceID") == self.object_id]
        wanted = [task for task in mine if task.get("DesiredState") == "running"]
        return max(wanted or mine, key=lambda task: task.get("CreatedAt", ""), default=None)

    async def start_object(self):
        """Wait until the task runs; a task Swarm cannot place is a refused spawn (503).
        Then the node is the workspace's, and the GPUs are named. A spawn that fails
        leaves no service behind."""
        try:
            task = await self._wait_running()
        except BaseException:
            await self.remove_object()
            raise
        if not self.shared_storage and not self.workspace_node:
            self.workspace_node = task["NodeID"]
        if self.gpus:
            held = [held for held in await self.swarm_leases() if held.lease.container == self.service_name]
            gpus = ", ".join(gpu for one in held for gpu in one.lease.gpus)
            self._event(f"Leased GPU {gpus} on node {held[0].node if held else task['NodeID']}")

    async def _wait_running(self) -> dict:
        while True:  # JupyterHub's start_timeout bounds it
            task = await self.get_task()
            status = task["Status"] if task else {"State": "new"}
            state = status["State"].lower()
            if state == "running":
                return task
            problem = status.get("Err", "")
            if state == "pending" and (swarmleases.NO_RESOURCES in problem or swarmleases.NO_NODE in problem):
                await self._refuse(problem)
            if state not in _STARTING:
                raise RuntimeError(f"Service {self.service_name} not running: {pformat(status)}")
            await asyncio.sleep(0.5)

    async def _refuse(self, problem: str):
        await self.remove_object()  # first: what is counted below must not include it
        if swarmleases.NO_NODE in problem and self.workspace_node:
            raise user_error(
                503,
                f"Your workspace is on node {await self._node_label(self.workspace_node)}, which cannot take "
                "servers now (drained or down). Try again later, or ask an admin.",
            )
        devices = [gpu.id for gpu in await self.gpu_inventory()]
        refusal = leases.no_gpu_available(devices, await self.current_leases(), self.gpus, where="in this cluster")
        raise user_error(503, refusal.message(viewer_is_admin=self.user.admin))

    async def remove_object(self):
        """Remove the service and wait, a bounded while, for its task to end: Swarm frees
        the task's GPUs only then, and the next spawn must find them free."""
        service = self.object_id
        try:
            await super().remove_object()
        except docker.errors.NotFound:  # already gone (a refused spawn removes its own)
            return
        for _ in range(60):
            if not [task for task in await self.docker("tasks") if task.get("ServiceID") == service]:
                return
            await asyncio.sleep(0.5)
        self.log.warning("Tasks of service %s still there 30 s after its removal", self.service_name)

    async def _node_label(self, node_id: str) -> str:
        try:
            return swarmleases.node_name(await self.docker("inspect_node", node_id))
        except docker.errors.NotFound:
            return node_id

    async def poll(self):
        """Running only while the task runs: a task that a drained or failed node lost is
        a stopped server (its GPUs back in the pool), not one waiting somewhere else."""
        task = await self.get_task()
        if task and task["Status"]["State"] == "running":
            return None
        # JupyterHub stops only servers that poll as running: the service goes here, or
        # its replacement task (pending for its node) would start when that node returns.
        await self.remove_object()
        return pformat(task["Status"]) if task else 0
