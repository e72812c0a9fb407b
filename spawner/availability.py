"""What the spawn page offers: for each profile, whether it can start now and, if not, why.

Pure functions over what the spawner reads (the profiles, the user's groups, the GPU
inventory and the leases): no Docker, no hub. The spawner refuses through REST the
same cases the page shows disabled: ``group_problem`` (403), over quota and no GPU on
this host (400), all leased (503 from the allocator, under its lock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import leases, profiles


@dataclass(frozen=True)
class GpuPool:
    """The host's GPUs as one user sees them now."""

    total: int
    free: int  # for an exclusive lease
    free_shared: int  # for a shared lease: devices nobody holds exclusively
    limit: int | None  # the user's quota (None: no limit)
    limit_source: str  # "per-user limit", "limit of group 'x'"


@dataclass(frozen=True)
class Offer:
    """One profile on the spawn page: ``reason`` is None when it can start now."""

    slug: str
    gpus: int  # what it leases with its default choices
    note: str  # "3 of 4 GPUs free; your limit: 1 GPU" ("" for a CPU profile)
    reason: str | None


def pool(
    inventory_ids: Sequence[str],
    held: Iterable[leases.Lease],
    *,
    user_limit: int | None,
    group_limits: Mapping[str, int | None],
    groups: Iterable[str],
) -> GpuPool:
    held = list(held)
    limit, source = leases.quota_of(user_limit=user_limit, group_limits=group_limits, groups=groups)
    return GpuPool(
        total=len(inventory_ids),
        free=leases.free_count(inventory_ids, held),
        free_shared=leases.free_count(inventory_ids, held, shared=True),
        limit=limit,
        limit_source=source,
    )


def _gpus(n: int) -> str:
    return f"{n} GPU{'s' if n != 1 else ''}"


def group_problem(profile: Mapping[str, Any], groups: Iterable[str], *, is_admin: bool) -> str | None:
    """Why a user outside the profile's ``allowed_groups`` may not pick it; admins may."""
    allowed = profile.get("allowed_groups") or []
    if not allowed or is_admin or set(allowed) & set(groups):
        return None
    return "only for members of " + " or ".join(allowed)


def gpu_problem(wanted: int, gpus: GpuPool, *, shared: bool, is_admin: bool) -> str | None:
    """Why ``wanted`` GPUs cannot be leased now (None: they can, or none are wanted)."""
    if not wanted:
        return None
    if not gpus.total:
        return "no GPUs on this host"
    if wanted > gpus.total:
        return f"needs {_gpus(wanted)}, this host has {gpus.total}"
    if not is_admin and gpus.limit is not None and wanted > gpus.limit:
        return f"needs {_gpus(wanted)}, your {gpus.limit_source} is {gpus.limit}"
    free = gpus.free_shared if shared else gpus.free
    if wanted > free:
        return "all GPUs are leased" if not free else f"needs {_gpus(wanted)}, {free} free"
    return None


def _note(gpus: GpuPool, *, shared: bool, is_admin: bool) -> str:
    free = gpus.free_shared if shared else gpus.free
    quota = "no limit" if is_admin or gpus.limit is None else _gpus(gpus.limit)
    return f"{free} of {gpus.total} GPUs free; your limit: {quota}"


def offers(
    configured: Sequence[Mapping[str, Any]],
    gpus: GpuPool,
    *,
    groups: Iterable[str],
    is_admin: bool,
    hide_gpu_profiles_without_gpus: bool = True,
) -> list[Offer]:
    """The profiles this user is shown, in order: admin-only ones only to admins, GPU ones
    not at all on a host without GPUs (unless told otherwise), each with why it cannot start."""
    groups = list(groups)
    shown = []
    for profile in profiles.normalize_profiles(configured):
        if profile["admin_only"] and not is_admin:
            continue
        settings = profiles.resolve_overrides(profile, {})
        wanted = gpus.total if settings["gpus"] == "all" else settings["gpus"]
        if settings["gpus"] == "all" or wanted:
            if not gpus.total and hide_gpu_profiles_without_gpus:
                continue
            wanted = max(wanted, 1)  # "all" of none is still a GPU profile
        shared = settings["gpu_shared"]
        reason = group_problem(profile, groups, is_admin=is_admin) or gpu_problem(
            wanted, gpus, shared=shared, is_admin=is_admin
        )
        note = _note(gpus, shared=shared, is_admin=is_admin) if wanted else ""
        shown.append(Offer(profile["slug"], wanted, note, reason))
    return shown
