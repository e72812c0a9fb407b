"""Idle culling per profile, through jupyterhub-idle-culler's own hook.

The culler (2.x) has one ``--timeout`` but lets a config file set
``IdleCuller.cull_arbiter_hook``, called with each server's model, whose
``user_options`` name the chosen profile. So one culler serves every profile:
the hub passes ``{slug: seconds}`` in the service's environment, the hook
(``spawner/cullerconfig.py``, the culler's config file) looks up the server's
profile and compares its inactivity with that profile's timeout (0: never);
servers of other profiles (or of a profile_list callable) get ``idle_timeout``.
Each cull the hook decides is counted for /hub/metrics (spawner/culltally.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from . import culltally
from .profiles import PROFILE_FIELD

TIMEOUTS_ENV = "CULL_PROFILE_TIMEOUTS"  # JSON {"default": seconds, "profiles": {slug: seconds}, "tally": path}
CONFIG_FILE = str(Path(__file__).with_name("cullerconfig.py"))


def profile_timeouts(profiles: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """{slug: idle_timeout} of the (normalised) profiles that set one."""
    return {p["slug"]: p["idle_timeout"] for p in profiles if p.get("idle_timeout") is not None}


def cull_every(default: int, timeouts: Mapping[str, int]) -> int:
    """Look often enough that a server outlives its timeout by at most a quarter (5 s .. 5 min)."""
    shortest = min(t for t in [default, *timeouts.values()] if t)
    return max(5, min(300, shortest // 4))


def culler_service(default: int, timeouts: Mapping[str, int], data_dir: str) -> dict[str, Any] | None:
    """The idle-culler service (None where nothing is ever culled). Its ``--timeout``
    is the longest, as the culler's own log reads it; the hook decides per profile
    and counts its culls in ``data_dir``."""
    if not default and not any(timeouts.values()):
        return None
    longest = max([default, *timeouts.values()])
    command = ["python3", "-m", "jupyterhub_idle_culler", f"--timeout={longest}",
               f"--cull-every={cull_every(default, timeouts)}", f"--config={CONFIG_FILE}"]  # fmt: skip
    given = {"default": default, "profiles": dict(timeouts), "tally": str(culltally.path(data_dir))}
    environment = {TIMEOUTS_ENV: json.dumps(given)}
    return {"name": "idle-culler", "command": command, "environment": environment}


def arbiter(default: int, timeouts: Mapping[str, int], tally: Path) -> Callable[..., bool]:
    """The culler's ``cull_arbiter_hook``: is this server idle longer than its profile allows?
    A yes is counted in ``tally``: the culler stops the server next."""

    def should_cull(*, inactive: timedelta, server: Mapping[str, Any], **_: Any) -> bool:
        profile = (server.get("user_options") or {}).get(PROFILE_FIELD)
        limit = timeouts.get(profile, default) if isinstance(profile, str) else default
        cull = bool(limit) and inactive.total_seconds() >= limit
        if cull:
            culltally.record(tally, culltally.IDLE)
        return cull

    return should_cull


def arbiter_from_env(environ: Mapping[str, str] = os.environ) -> Callable[..., bool]:
    given = json.loads(environ[TIMEOUTS_ENV])
    timeouts = {str(k): int(v) for k, v in given["profiles"].items()}
    return arbiter(int(given["default"]), timeouts, Path(given["tally"]))
