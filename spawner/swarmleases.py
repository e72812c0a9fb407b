"""GPU leases on a Docker Swarm, read back from the engine.

Each node advertises its GPUs as named generic resources (dockerd's
``node-generic-resources``, e.g. ``NVIDIA-GPU=GPU-8f2c...``); a user service
reserves N of them and Swarm's scheduler assigns the ids to its task
(DESIGN.md, decision 13). So the nodes are the inventory and the tasks that
should run are the leases: nothing is written by the hub, and nothing here
talks to Docker (the spawner and ``hubctl gpus`` pass what the API returned).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .labels import LABEL_USER
from .leases import Lease, holder_fields, parse_time

DEFAULT_KIND = "NVIDIA-GPU"  # the resource kind nodes advertise GPUs as (scripts/swarm-node-config's default)
# Swarm hands the assigned ids to the container as DOCKER_RESOURCE_<KIND>.
RESOURCE_ENV_PREFIX = "DOCKER_RESOURCE_"
KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# A task Swarm could not place for want of free generic resources (or CPU, memory).
NO_RESOURCES = "insufficient resources"
# A task whose placement constraints no usable node meets (its pinned node is drained or down).
NO_NODE = "scheduling constraints"


@dataclass(frozen=True)
class SwarmGpu:
    """One advertised device and the node that has it; ``usable`` when that node is ready and active."""

    id: str
    node_id: str
    node: str
    usable: bool


@dataclass(frozen=True)
class SwarmLease:
    node: str
    lease: Lease


def resource_env(kind: str) -> str:
    """The variable in which Swarm hands a task its ids of ``kind``."""
    return RESOURCE_ENV_PREFIX + kind.upper()


def node_usable(node: Mapping) -> bool:
    return node.get("Status", {}).get("State") == "ready" and node.get("Spec", {}).get("Availability") == "active"


def node_name(node: Mapping) -> str:
    return node.get("Description", {}).get("Hostname") or node.get("ID", "")


def _named(resources: Iterable[Mapping] | None, kind: str) -> list[str]:
    return [
        spec["Value"]
        for item in resources or ()
        if (spec := item.get("NamedResourceSpec")) and spec.get("Kind") == kind and spec.get("Value")
    ]


def cluster_gpus(nodes: Sequence[Mapping], kind: str) -> list[SwarmGpu]:
    """Every device of ``kind`` the nodes advertise, node by node in name order."""
    gpus = []
    for node in sorted(nodes, key=node_name):
        advertised = _named(node.get("Description", {}).get("Resources", {}).get("GenericResources"), kind)
        gpus += [SwarmGpu(gpu, node["ID"], node_name(node), node_usable(node)) for gpu in advertised]
    return gpus


def task_leases(
    tasks: Sequence[Mapping], services: Sequence[Mapping], nodes: Sequence[Mapping], kind: str
) -> list[SwarmLease]:
    """What the tasks of ``services`` (the hub's user services) hold: a task holds its assigned
    ids while it should run (desired state running) and has a node, whatever its current state,
    so a task still starting can never have its device handed out again."""
    names = {node["ID"]: node_name(node) for node in nodes}
    by_id = {service["ID"]: service for service in services}
    found = []
    for task in tasks:
        service = by_id.get(task.get("ServiceID"))
        gpus = tuple(_named(task.get("GenericResources"), kind))
        if service is None or not gpus or task.get("DesiredState") != "running":
            continue
        try:
            since = parse_time(task.get("CreatedAt", ""))
        except ValueError:
            since = None
        user = service.get("Spec", {}).get("Labels", {}).get(LABEL_USER, "")
        lease = Lease(user, gpus, since, False, service.get("Spec", {}).get("Name", ""))
        found.append(SwarmLease(names.get(task.get("NodeID"), task.get("NodeID", "")), lease))
    return found


def gpu_rows(nodes: Sequence[Mapping], services: Sequence[Mapping], tasks: Sequence[Mapping], kind: str) -> list[dict]:
    """One row per advertised device for `hubctl gpus`: its node, holders and since when."""
    held = task_leases(tasks, services, nodes, kind)
    rows = []
    for gpu in cluster_gpus(nodes, kind):
        holders = [one.lease for one in held if one.node == gpu.node and gpu.id in one.lease.gpus]
        node = gpu.node + ("" if gpu.usable else " (not available)")
        rows.append({"node": node, "gpu": gpu.id, **holder_fields(holders)})
    return rows
