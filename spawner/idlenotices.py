"""What GPU-idle reclaim tells users, on the hub's home page.

The reclaim service (spawner/gpureclaim.py) writes one notice per user into a
JSON file in the hub's data volume: a warning with the time the server will be
stopped, or the stop itself. The hub shows it as the home page's announcement
(JupyterHub's ``announcement_home``, a per-user callable of ``template_vars``).
The page inserts the announcement as HTML: the text is escaped here.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .gpuidle import describe

NOTICES_FILE = "gpu-idle-notices.json"  # in the hub's data directory
WARNING, STOPPED = "warning", "stopped"


def path(data_dir: str) -> Path:
    return Path(data_dir) / NOTICES_FILE


def read(file: Path) -> dict[str, dict[str, Any]]:
    """{user: notice}; an absent or unreadable file is no notices (a broken one is replaced at the next round)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write(file: Path, notices: dict[str, dict[str, Any]]) -> None:
    """Replace the file whole (a reader never sees half of it)."""
    partial = file.with_name(file.name + ".partial")
    partial.write_text(json.dumps(notices, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, file)


def warning(idle_for: float, stop_at: datetime) -> dict[str, Any]:
    return {"kind": WARNING, "idle_for": int(idle_for), "stop_at": stop_at.isoformat(timespec="seconds")}


def stopped(idle_for: float, at: datetime) -> dict[str, Any]:
    return {"kind": STOPPED, "idle_for": int(idle_for), "at": at.isoformat(timespec="seconds")}


def text(notice: dict[str, Any], now: datetime) -> str:
    """The sentence a user reads."""
    idle = describe(notice.get("idle_for", 0))
    if notice.get("kind") == WARNING:
        stop_at = datetime.fromisoformat(notice["stop_at"])
        left = describe(max(0, (stop_at - now).total_seconds()))
        return (f"Your server's GPUs have been idle for {idle}: it will be stopped in {left} "
                f"(at {stop_at:%H:%M} UTC) unless they are used again. Your files are kept.")  # fmt: skip
    return f"Your server was stopped: GPU idle for {idle}; your files are kept."


def announcement(notice: dict[str, Any] | None, running: bool, started: datetime | None, now: datetime) -> str:
    """The home page's announcement for one user: a warning while their server runs,
    the stop until they start again; escaped HTML."""
    if not notice:
        return ""
    if notice.get("kind") == WARNING and not running:
        return ""
    if notice.get("kind") == STOPPED and started and started > datetime.fromisoformat(notice["at"]):
        return ""
    return html.escape(text(notice, now))


@dataclass(frozen=True)
class HomeAnnouncement:
    """``template_vars["announcement_home"]``: the hub calls it with the page's user (None when signed out)."""

    data_dir: str

    def __call__(self, user) -> str:
        if user is None:
            return ""
        spawner = user.spawner
        started = spawner.orm_spawner.started if spawner.orm_spawner else None
        if started is not None and started.tzinfo is None:  # JupyterHub stores UTC without a zone
            started = started.replace(tzinfo=timezone.utc)
        notice = read(path(self.data_dir)).get(user.name)
        return announcement(notice, spawner.active, started, datetime.now(timezone.utc))
