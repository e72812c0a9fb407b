"""Workspace volumes of removed accounts: archived, never reused, restorable.

Docker cannot rename a volume, so archiving copies the workspace into a new
volume named after the old owner and the date, then removes the original: a
new account with the same name starts with an empty workspace. Blocking
calls on a low-level ``docker.APIClient``; the spawner runs them in its
executor, hubctl directly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import docker

from .labels import LABEL_ARCHIVE_OF, LABEL_ARCHIVED_AT, LABEL_DEPLOYMENT, owner_labels

COPY_TIMEOUT = 3600  # seconds; a workspace with conda envs can be large


class WorkspaceError(RuntimeError):
    """An archive or restore that cannot be done; the message says why."""


@dataclass(frozen=True)
class Archive:
    name: str
    owner: str
    archived_at: str


def _exists(client: docker.APIClient, volume: str) -> bool:
    try:
        client.inspect_volume(volume)
    except docker.errors.NotFound:
        return False
    return True


DF_TRIES = 20  # the engine runs one disk-usage count at a time and refuses a second meanwhile


def volume_sizes(client: docker.APIClient) -> dict[str, int]:
    """{volume: bytes} by Docker's own count (``docker system df``); blocking, waits its turn."""
    for attempt in range(DF_TRIES):
        try:
            usage = client.df()
            break
        except docker.errors.APIError as e:
            if "already running" not in str(e.explanation) or attempt == DF_TRIES - 1:
                raise
            time.sleep(0.5)
    found = {}
    for v in usage.get("Volumes") or []:
        size = (v.get("UsageData") or {}).get("Size", -1)
        if size >= 0:
            found[v["Name"]] = size
    return found


_sizes_lock = threading.Lock()
_last_count: tuple[float, dict[str, int]] = (float("-inf"), {})  # when it ended, what it found


def shared_volume_sizes(client: docker.APIClient) -> dict[str, int]:
    """volume_sizes, shared: a caller that arrives while a count is under way waits for it
    and takes its result. A count walks every volume and the engine runs one at a time,
    so the spawns of a login storm share a few counts instead of queueing for 25.
    Blocking."""
    global _last_count
    arrived = time.monotonic()
    with _sizes_lock:
        if _last_count[0] <= arrived:  # no count ended after this caller came
            sizes = volume_sizes(client)
            _last_count = (time.monotonic(), sizes)
        return _last_count[1]


def copy_volume(client: docker.APIClient, image: str, source: str, target: str) -> None:
    """Copy every file of ``source`` into ``target``, owners and modes kept, in a throwaway container."""
    container = client.create_container(
        image,
        ["cp", "-a", "/from/.", "/to/"],
        entrypoint=[],
        user="0",
        network_disabled=True,
        host_config=client.create_host_config(
            binds={source: {"bind": "/from", "mode": "ro"}, target: {"bind": "/to", "mode": "rw"}},
            cap_drop=["ALL"],
            cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"],  # cp -a as root: owners, modes, 600 files
            security_opt=["no-new-privileges:true"],
        ),
    )
    try:
        client.start(container)
        status = client.wait(container, timeout=COPY_TIMEOUT)["StatusCode"]
        if status:
            output = client.logs(container).decode(errors="replace").strip()
            raise WorkspaceError(f"copying {source} to {target} failed ({status}): {output[-500:]}")
    finally:
        client.remove_container(container, force=True)


def archive(client: docker.APIClient, image: str, volume: str, owner: str, prefix: str, slug: str) -> str | None:
    """Move ``volume`` (``owner``'s workspace) into a dated archive volume; its name, or None if none."""
    if not _exists(client, volume):
        return None
    now = datetime.now(timezone.utc)
    name = f"{prefix}-archive-{slug}-{now:%Y%m%d-%H%M%S}"
    labels = {LABEL_DEPLOYMENT: prefix, LABEL_ARCHIVE_OF: owner, LABEL_ARCHIVED_AT: now.isoformat(timespec="seconds")}
    client.create_volume(name, labels=labels)
    try:
        copy_volume(client, image, volume, name)
    except Exception:
        client.remove_volume(name, force=True)  # keep the original as it was
        raise
    client.remove_volume(volume)
    return name


def archives(client: docker.APIClient, prefix: str) -> list[Archive]:
    found = client.volumes(filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}", LABEL_ARCHIVE_OF]})["Volumes"] or []
    rows = [Archive(v["Name"], v["Labels"][LABEL_ARCHIVE_OF], v["Labels"].get(LABEL_ARCHIVED_AT, "")) for v in found]
    return sorted(rows, key=lambda a: (a.owner, a.archived_at))


def find_archive(client: docker.APIClient, prefix: str, name: str) -> Archive:
    for item in archives(client, prefix):
        if item.name == name:
            return item
    raise WorkspaceError(f"no archived workspace {name!r}; `hubctl workspaces list` shows them")


def restore(client: docker.APIClient, image: str, item: Archive, volume: str, user: str, prefix: str) -> None:
    """Move an archive into ``user``'s (absent) workspace volume ``volume``."""
    if _exists(client, volume):
        raise WorkspaceError(
            f"{user} already has a workspace ({volume}); remove that account first "
            "(its workspace is then archived) or restore to another user with --to"
        )
    client.create_volume(volume, labels=owner_labels(prefix, user))
    try:
        copy_volume(client, image, item.name, volume)
    except Exception:
        client.remove_volume(volume, force=True)
        raise
    client.remove_volume(item.name)
