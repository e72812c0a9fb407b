"""GPU leases, written as Docker labels on user containers, and the allocator.

Docker is the source of truth: the spawner lists containers, turns their
labels into ``Lease`` objects with ``leases_from_containers`` and asks
``allocate`` for free devices. Nothing here talks to Docker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from docker.types import DeviceRequest

from .labels import LABEL_GPU_MODE, LABEL_GPUS, LABEL_LEASED_AT, LABEL_USER
from .messages import shown
from .settings import GPU_MODES

log = logging.getLogger(__name__)

MODE_EXCLUSIVE = "exclusive"
MODE_SHARED = "shared"
DRIVER_CAPABILITIES = {"compute", "compat32", "graphics", "utility", "video", "display", "all"}


@dataclass(frozen=True)
class Lease:
    """GPUs held by one container. ``since`` is None when its label was unreadable."""

    user: str
    gpus: tuple[str, ...]
    since: datetime | None
    shared: bool
    container: str


class NoGpuAvailable(RuntimeError):
    """Not enough free GPUs; ``message()`` explains it to a user or an admin. ``where``: the pool
    ("on this server", or "in this cluster" on a Swarm)."""

    def __init__(
        self, requested: int, total: int, leased: int, holders: Sequence[Lease], *, where: str = "on this server"
    ):
        self.requested = requested
        self.where = where
        self.total = total
        self.leased = leased
        self.holders = tuple(holders)
        started = [lease.since for lease in self.holders if lease.since is not None]
        self.oldest: datetime | None = min(started) if started else None
        super().__init__(self.message(viewer_is_admin=False))

    def message(self, viewer_is_admin: bool) -> str:
        """Plain words; other users are named only when the viewer is an admin."""
        want = f"{self.requested} GPU{'s' if self.requested != 1 else ''}"
        if self.requested > self.total:
            have = f"only {self.total}" if self.total else "no GPU"
            return f"You asked for {want}, but this server has {have}."
        text = f"No free GPU for your request ({want}): {self.leased} of the {self.total} GPUs {self.where} are leased"
        if self.oldest is not None:
            text += f", the oldest lease since {_when(self.oldest)}"
        text += "."
        if viewer_is_admin and self.holders:
            held = "; ".join(
                f"{lease.user or '(unknown user)'} holds {', '.join(lease.gpus)}"
                f"{' (shared)' if lease.shared else ''}"
                f"{f' since {_when(lease.since)}' if lease.since else ''}"
                for lease in self.holders
            )
            return f"{text} {held}."
        return f"{text} Try again later, or ask an admin."


class QuotaExceeded(ValueError):
    """A request above the user's GPU limit."""


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with a zone: a lease label's, or Docker's (nanoseconds, "Z")."""
    if text.endswith("Z"):  # fromisoformat accepts "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Python 3.10 parses 3 or 6 digits of a second only
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{(rest[:digits] + '000000')[:6]}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def lease_labels(user: str, gpus: Sequence[str], shared: bool, now: datetime | None = None) -> dict[str, str]:
    """Labels for a container leasing ``gpus`` (an empty tuple: a CPU container)."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("lease_labels needs a time-zone-aware datetime")
    if any("," in gpu or not gpu for gpu in gpus):
        raise ValueError(f"GPU ids must be non-empty and contain no comma: {list(gpus)}")
    return {
        LABEL_GPUS: ",".join(gpus),
        LABEL_USER: user,
        LABEL_LEASED_AT: now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        LABEL_GPU_MODE: MODE_SHARED if shared else MODE_EXCLUSIVE,
    }


def gpus_of(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The GPU ids a container's labels lease, in order, without repeats or blanks."""
    return tuple(dict.fromkeys(p.strip() for p in labels.get(LABEL_GPUS, "").split(",") if p.strip()))


def named_labels(containers: Iterable[Mapping]) -> list[tuple[str, Mapping[str, str]]]:
    """(name, labels) of containers as the engine's API lists them (``docker ps``)."""
    return [(c["Names"][0].lstrip("/"), c["Labels"]) for c in containers]


def leases_from_containers(
    items: Iterable[tuple[str, Mapping[str, str]]],
    *,
    on_problem: Callable[[str], None] | None = None,
) -> list[Lease]:
    """Leases from ``(container_name, labels)`` pairs.

    A container without a (non-empty) gpus label holds nothing. A container
    whose gpus label parses keeps its GPUs even when its other labels are
    malformed, so a bad label can never free a device in use: an unreadable
    mode counts as exclusive, an unreadable time as None, a missing user as "".
    Each oddity is passed, as one sentence, to ``on_problem`` (default: a
    logged warning).
    """
    leases: list[Lease] = []
    problem = on_problem or log.warning
    for name, labels in items:
        raw = labels.get(LABEL_GPUS)
        if not raw:
            continue
        gpus = gpus_of(labels)
        if not gpus:
            problem(f"{name}: label {LABEL_GPUS}={raw!r} names no GPU; ignored")
            continue
        user = labels.get(LABEL_USER, "")
        if not user:
            problem(f"{name}: label {LABEL_USER} is missing")
        since: datetime | None = None
        try:
            since = parse_time(labels.get(LABEL_LEASED_AT, ""))
        except ValueError:
            problem(
                f"{name}: label {LABEL_LEASED_AT}={labels.get(LABEL_LEASED_AT)!r} is not an ISO 8601 time with a zone"
            )
        mode = labels.get(LABEL_GPU_MODE)
        if mode not in (MODE_EXCLUSIVE, MODE_SHARED):
            problem(f"{name}: label {LABEL_GPU_MODE}={mode!r} unknown; treated as exclusive")
        leases.append(Lease(user, gpus, since, mode == MODE_SHARED, name))
    return leases


def is_count(value: object) -> bool:
    """The one rule for a GPU count: a non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_count(value: object, what: str = "GPU count") -> int:
    """``value`` if ``is_count``, else ValueError naming ``what``."""
    if not is_count(value):
        raise ValueError(f"{what} must be a non-negative integer, got {shown(value)}")
    return value  # type: ignore[return-value]


def _candidates(inventory_ids: Sequence[str], leases: Sequence[Lease], shared: bool) -> list[str]:
    """Devices a request may take, in the order it takes them: for an exclusive request the
    devices no lease holds, for a shared one those nobody holds exclusively, least-loaded first."""
    known = set(inventory_ids)
    load = {gpu: 0 for gpu in inventory_ids}
    exclusive: set[str] = set()
    for lease in leases:
        for gpu in lease.gpus:
            if gpu in known:
                load[gpu] += 1
                if not lease.shared:
                    exclusive.add(gpu)
    if not shared:
        return [gpu for gpu in inventory_ids if load[gpu] == 0]
    candidates = [gpu for gpu in inventory_ids if gpu not in exclusive]
    return sorted(candidates, key=lambda gpu: load[gpu])  # stable: ties keep inventory order


def free_count(inventory_ids: Sequence[str], leases: Iterable[Lease], *, shared: bool = False) -> int:
    """How many devices a request (exclusive or shared) could take now: what the spawn page shows."""
    return len(_candidates(inventory_ids, list(leases), shared))


def no_gpu_available(
    inventory_ids: Sequence[str], leases: Iterable[Lease], count: int, *, where: str = "on this server"
) -> NoGpuAvailable:
    """The refusal of ``count`` GPUs: how many of the inventory's are leased, and by whom."""
    known = set(inventory_ids)
    holders = [lease for lease in leases if known.intersection(lease.gpus)]
    leased = len({gpu for lease in holders for gpu in lease.gpus if gpu in known})
    return NoGpuAvailable(count, len(inventory_ids), leased, holders, where=where)


def holder_fields(holders: Sequence[Lease]) -> dict:
    """A GPU's holders as `hubctl gpus` shows them: users, mode, the oldest lease, containers."""
    return {
        "users": [lease.user for lease in holders],
        "mode": "shared" if any(lease.shared for lease in holders) else ("exclusive" if holders else ""),
        "since": min((lease.since.isoformat() for lease in holders if lease.since), default=""),
        "containers": [lease.container for lease in holders],
    }


def allocate(
    inventory_ids: Sequence[str], leases: Iterable[Lease], count: int, *, shared: bool = False
) -> tuple[str, ...]:
    """Pick ``count`` devices, in inventory order, or raise NoGpuAvailable.

    Exclusive requests take only devices no lease holds. Shared requests may
    take devices held only by shared leases, least-loaded first, never a
    device someone holds exclusively.
    """
    check_count(count)
    if count == 0:
        return ()
    leases = list(leases)
    candidates = _candidates(inventory_ids, leases, shared)
    if len(candidates) < count:
        raise no_gpu_available(inventory_ids, leases, count)
    chosen = set(candidates[:count])
    return tuple(gpu for gpu in inventory_ids if gpu in chosen)


def quota_of(
    *, user_limit: int | None, group_limits: Mapping[str, int | None], groups: Iterable[str]
) -> tuple[int | None, str]:
    """(limit, where it comes from): the most generous of ``user_limit`` (everyone's) and the
    limits of the user's groups; None is no limit."""
    mine = [g for g in groups if g in group_limits]
    limits = [user_limit] + [group_limits[g] for g in mine]
    limit = None if None in limits else max(limits)  # type: ignore[type-var]
    if limit is None or limit == user_limit:
        return limit, "per-user limit"
    return limit, "limit of group " + ", ".join(repr(g) for g in mine if group_limits[g] == limit)


def over_quota(requested: int, limit: int | None, source: str) -> str | None:
    """Why ``requested`` GPUs are above ``limit`` (from ``quota_of``), or None."""
    if limit is None or requested <= limit:
        return None
    return (
        f"You asked for {requested} GPU{'s' if requested != 1 else ''}, "
        f"but your {source} is {limit} GPU{'s' if limit != 1 else ''}."
    )


def check_quota(
    requested: int,
    *,
    user_limit: int | None,
    group_limits: Mapping[str, int | None],
    groups: Iterable[str],
    is_admin: bool,
) -> None:
    """Raise QuotaExceeded when ``requested`` GPUs are above the user's limit (``quota_of``).
    Admins may exceed it."""
    check_count(requested, "requested GPU count")
    problem = over_quota(requested, *quota_of(user_limit=user_limit, group_limits=group_limits, groups=groups))
    if problem and not is_admin:
        raise QuotaExceeded(problem)


def docker_gpu_config(
    gpu_ids: Sequence[str],
    *,
    mode: str = "device-requests",
    capabilities: str = "compute,utility",
    runtime: str = "nvidia",
) -> tuple[dict[str, object], dict[str, str]]:
    """Docker host-config keys and environment for a container given ``gpu_ids``.

    ``mode`` is "device-requests" (Docker's ``--gpus``) or "runtime" (the
    legacy ``--runtime=nvidia``, the runtime's name being ``runtime``). Inside
    the container the devices are renumbered from 0, hence CUDA_VISIBLE_DEVICES "0,1,...".
    """
    if mode not in GPU_MODES:
        raise ValueError(f"GPU mode must be one of {', '.join(GPU_MODES)}, got {mode!r}")
    caps = [c.strip() for c in capabilities.split(",") if c.strip()]
    unknown = sorted(set(caps) - DRIVER_CAPABILITIES)
    if not caps or unknown:
        raise ValueError(
            f"Unknown NVIDIA driver capabilities {unknown or capabilities!r}; "
            f"allowed: {', '.join(sorted(DRIVER_CAPABILITIES))}"
        )
    ids = list(gpu_ids)
    env = {
        "NVIDIA_VISIBLE_DEVICES": ",".join(ids) if ids else "void",
        "NVIDIA_DRIVER_CAPABILITIES": ",".join(caps),
        "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(ids))),
    }
    host_config: dict[str, object] = {}
    if ids and mode == "device-requests":
        request = DeviceRequest(driver="nvidia", device_ids=ids, capabilities=[["gpu"]])
        host_config["device_requests"] = [request]
    elif ids:
        host_config["runtime"] = runtime
    return host_config, env
