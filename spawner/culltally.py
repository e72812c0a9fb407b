"""Culls by reason, counted across processes, for the hub's metrics.

The deciders are not in the hub process: the idle culler (its arbiter hook,
spawner/culling.py) and GPU-idle reclaim (spawner/gpureclaim.py) are hub
services of their own. Each adds to a small JSON file in the hub's data
volume; /hub/metrics reads it as the counter ``gpuhub_culls_total{reason}``.
Totals survive hub restarts, as a Prometheus counter's may (it only grows).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

TALLY_FILE = "culls.json"  # in the hub's data directory
IDLE, GPU_IDLE = "idle", "gpu-idle"


def path(data_dir: str) -> Path:
    return Path(data_dir) / TALLY_FILE


def read(file: Path) -> dict[str, int]:
    """{reason: culls}; an absent or unreadable file counts nothing."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def record(file: Path, reason: str) -> None:
    """Add one cull under ``reason``. Two services may record at once: the lock
    orders them; the replace keeps a reader from seeing half a file."""
    with open(file.with_name(file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counts = read(file)
        counts[reason] = counts.get(reason, 0) + 1
        partial = file.with_name(file.name + ".partial")
        partial.write_text(json.dumps(counts, sort_keys=True), encoding="utf-8")
        os.replace(partial, file)
