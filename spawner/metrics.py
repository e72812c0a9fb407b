"""The platform's Prometheus metrics, on JupyterHub's registry: they appear at /hub/metrics.

GPUs total, leased and free, lease age per user and device (container
labels), utilisation and memory per device (NVML: none without a GPU),
workspace bytes per user (Docker's disk usage of the volumes, cached) and the
soft limit they are compared with, and
culls by reason (counted by the culling services, spawner/culltally.py).

A scrape must not block the hub's event loop, so ``collect`` serves the last
snapshot and, when it is older than ``REFRESH``, starts a new one in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import culltally, inventory, leases
from .labels import LABEL_DEPLOYMENT, LABEL_USER

log = logging.getLogger(__name__)

REFRESH = 10.0  # seconds a snapshot of leases and NVML serves scrapes
WORKSPACE_REFRESH = 600.0  # Docker sums every volume's files: seldom
_MIB = 1024 * 1024


@dataclass
class Snapshot:
    taken: float = 0.0
    total: int = 0
    leased: int = 0
    free: int = 0
    device_ids: list[str] = field(default_factory=list)
    held: list[leases.Lease] = field(default_factory=list)
    lease_ages: list[tuple[str, str, float]] = field(default_factory=list)  # (user, gpu, seconds)
    devices: dict[str, dict[str, int | None]] = field(default_factory=dict)  # inventory.usage()


def gpu_state(client: docker.DockerClient, gpu_ids: list[str], nvml: Any = inventory.AUTO) -> Snapshot:
    """Leases, counts and NVML usage now. Blocking: call it off the event loop.

    Leases of every container on the engine count, as the spawner counts them
    when it allocates: a host's GPUs are one pool."""
    devices = [gpu.id for gpu in inventory.discover(gpu_ids, nvml=nvml)]
    found = client.api.containers(all=True, filters={"label": leases.LABEL_GPUS})
    held = leases.leases_from_containers(leases.named_labels(found))
    return snapshot_of(devices, held, inventory.usage(nvml=nvml), time.time())


def snapshot_of(devices: list[str], held: list[leases.Lease], usage: dict, now: float) -> Snapshot:
    """The snapshot of ``devices`` with leases ``held`` and NVML's ``usage`` at ``now``."""
    in_use = {gpu for lease in held for gpu in lease.gpus if gpu in devices}
    ages = [(lease.user, gpu, now - lease.since.timestamp()) for lease in held if lease.since for gpu in lease.gpus]
    return Snapshot(
        taken=now,
        total=len(devices),
        leased=len(in_use),
        free=leases.free_count(devices, held),
        device_ids=devices,
        held=held,
        lease_ages=ages,
        devices=usage,
    )


def workspace_bytes(client: docker.DockerClient, prefix: str) -> dict[str, int]:
    """Bytes in each user's volumes of this deployment (``docker system df``). Blocking."""
    sizes: dict[str, int] = {}
    for volume in client.api.df().get("Volumes") or []:
        labels = volume.get("Labels") or {}
        size = (volume.get("UsageData") or {}).get("Size", -1)
        if labels.get(LABEL_DEPLOYMENT) == prefix and LABEL_USER in labels and size >= 0:
            sizes[labels[LABEL_USER]] = sizes.get(labels[LABEL_USER], 0) + size
    return sizes


class PlatformCollector:
    """Serves the last ``Snapshot``; a scrape of a stale one starts the next in a thread.
    Workspace sizes are measured apart, seldom, and never waited for."""

    def __init__(
        self,
        measure: Callable[[], Snapshot],
        measure_workspaces: Callable[[], dict[str, int]],
        culls: Callable[[], dict[str, int]],
        soft_limit: int = 0,
    ):
        self.measure, self.measure_workspaces, self.culls = measure, measure_workspaces, culls
        self.soft_limit = soft_limit  # bytes; 0: none
        self.snapshot = Snapshot()
        self.workspaces: dict[str, int] = {}  # user -> bytes
        self._refreshing: asyncio.Task | None = None
        self._sizing: asyncio.Task | None = None
        self._sized_at = 0.0

    async def refresh(self) -> Snapshot:
        """A new snapshot, measured in a thread; starts a workspace measurement when theirs is old."""
        self.snapshot = await asyncio.to_thread(self.measure)
        idle = self._sizing is None or self._sizing.done()
        if idle and time.time() - self._sized_at > WORKSPACE_REFRESH:
            self._sized_at = time.time()
            self._sizing = asyncio.get_running_loop().create_task(self._measure_workspaces())
            self._sizing.add_done_callback(_log_failure)
        return self.snapshot

    async def _measure_workspaces(self) -> None:
        try:
            self.workspaces = await asyncio.to_thread(self.measure_workspaces)
        except docker.errors.APIError as e:  # e.g. another disk-usage run under way: keep the old sizes
            log.warning("workspace sizes not measured: %s", e)

    def _schedule(self) -> None:
        if self._refreshing and not self._refreshing.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a scrape outside the hub's loop (a test): nothing to start
            return
        self._refreshing = loop.create_task(self.refresh())
        self._refreshing.add_done_callback(_log_failure)

    def describe(self):
        return []  # no collect() at registration: that would measure before the hub runs

    def collect(self):
        culls = CounterMetricFamily("gpuhub_culls", "Servers culled, by reason (idle, gpu-idle).", labels=["reason"])
        for reason, count in sorted(self.culls().items()):  # a small file, read at each scrape: needs no snapshot
            culls.add_metric([reason], count)
        yield culls
        if self.soft_limit:
            yield GaugeMetricFamily(
                "gpuhub_workspace_soft_limit_bytes", "Workspace size above which spawns warn.", value=self.soft_limit
            )
        snap = self.snapshot
        if time.time() - snap.taken > REFRESH:
            self._schedule()
        if not snap.taken:
            return
        yield GaugeMetricFamily("gpuhub_gpus_total", "GPUs this hub leases.", value=snap.total)
        yield GaugeMetricFamily("gpuhub_gpus_leased", "GPUs held by at least one server.", value=snap.leased)
        yield GaugeMetricFamily("gpuhub_gpus_free", "GPUs an exclusive request could take now.", value=snap.free)
        age = GaugeMetricFamily("gpuhub_lease_age_seconds", "How long each lease is held.", labels=["user", "gpu"])
        for user, gpu, seconds in snap.lease_ages:
            age.add_metric([user, gpu], seconds)
        yield age
        util = GaugeMetricFamily("gpuhub_gpu_utilization_percent", "GPU utilisation (NVML).", labels=["gpu"])
        memory = GaugeMetricFamily("gpuhub_gpu_memory_used_bytes", "GPU memory in use (NVML).", labels=["gpu"])
        for gpu, used in snap.devices.items():
            if used.get("utilization_percent") is not None:
                util.add_metric([gpu], used["utilization_percent"])
            if used.get("memory_used_mib") is not None:
                memory.add_metric([gpu], used["memory_used_mib"] * _MIB)
        yield util
        yield memory
        sizes = GaugeMetricFamily("gpuhub_workspace_bytes", "Bytes in each user's workspace.", labels=["user"])
        for user, size in sorted(self.workspaces.items()):
            sizes.add_metric([user], size)
        yield sizes


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception():
        log.error("platform metrics not refreshed: %s", task.exception())


_installed: dict[str, PlatformCollector] = {}


@functools.cache
def _client() -> docker.DockerClient:
    """Made at the first measurement, not at configuration: loading the config needs no engine."""
    return docker.from_env(timeout=60)


def install(prefix: str, gpu_ids: list[str], data_dir: str, soft_limit: int = 0) -> PlatformCollector:
    """The collector of deployment ``prefix``, registered on JupyterHub's registry once per process."""
    if prefix not in _installed:
        tally = culltally.path(data_dir)
        collector = PlatformCollector(
            lambda: gpu_state(_client(), gpu_ids),
            lambda: workspace_bytes(_client(), prefix),
            lambda: culltally.read(tally),
            soft_limit,
        )
        REGISTRY.register(collector)
        _installed[prefix] = collector
    return _installed[prefix]
