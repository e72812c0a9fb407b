"""`hubctl workspaces backup|restore` with archive files on the host, and the list of
every workspace with its owner, size and last use.

hubctl runs in the hub container; the archives belong on the host. So each backup
or restore runs ``python3 -m spawner.wsarchive`` in a throwaway container of the
hub's own image, with the workspace volume and the host folder bind-mounted (the
engine resolves bind paths on the host). scripts/hubctl passes the admin's working
directory as HUBCTL_HOST_CWD, so relative paths mean what the admin typed.
"""

from __future__ import annotations

import os
import posixpath
import socket
from datetime import datetime, timezone

import docker

from .. import workspaces
from ..labels import LABEL_ARCHIVE_OF, LABEL_DEPLOYMENT, LABEL_USER, owner_labels
from ..names import safe_slug, workspace_volume
from ..sizes import human
from ..wsarchive import SUFFIX

HOST_CWD_ENV = "HUBCTL_HOST_CWD"
HELPER_TIMEOUT = 3600  # seconds; a workspace with conda envs can be large


class BackupError(RuntimeError):
    """A backup or restore refused or failed; the message says why and that nothing changed."""


def host_path(path: str, environ=os.environ) -> str:
    """``path`` as the host sees it: absolute, or relative to the admin's directory."""
    if posixpath.isabs(path):
        return posixpath.normpath(path)
    cwd = environ.get(HOST_CWD_ENV, "")
    if not cwd:
        raise BackupError(f"{path!r} is relative and the host's directory is unknown: give an absolute path")
    return posixpath.normpath(posixpath.join(cwd, path))


def archive_name(user: str, now: datetime) -> str:
    return f"{safe_slug(user)}-{now:%Y%m%dT%H%M%SZ}{SUFFIX}"


def own_image(client: docker.APIClient) -> str:
    """The hub's image (this container's, whose host name Docker sets to its id): it has spawner.wsarchive."""
    return client.inspect_container(socket.gethostname())["Config"]["Image"]


def run_helper(client: docker.APIClient, image: str, command: list[str], volume: str, folder: str, restoring: bool):
    """Run ``python3 -m spawner.wsarchive COMMAND`` as root with only the file capabilities, the
    workspace ``volume`` at /workspace and the host's ``folder`` at /backups (the one written
    read-write); its output. A folder that does not exist is an error, never created."""
    mounts = [
        docker.types.Mount("/workspace", volume, type="volume", read_only=not restoring),
        docker.types.Mount("/backups", folder, type="bind", read_only=restoring),
    ]
    try:
        container = client.create_container(
            image,
            ["python3", "-m", "spawner.wsarchive", *command],
            entrypoint=[],
            user="0",
            network_disabled=True,
            host_config=client.create_host_config(
                mounts=mounts,
                cap_drop=["ALL"],
                cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"],  # owners and modes as archived
                security_opt=["no-new-privileges:true"],
            ),
        )
    except docker.errors.APIError as e:  # e.g. the host folder does not exist
        raise BackupError(f"{e.explanation}; nothing changed") from None
    try:
        client.start(container)
        status = client.wait(container, timeout=HELPER_TIMEOUT)["StatusCode"]
        output = client.logs(container).decode(errors="replace").strip()
    finally:
        client.remove_container(container, force=True)
    if status:
        raise BackupError(output.removeprefix("ERROR: ") or f"the helper failed ({status})")
    return output


def user_volumes(client: docker.APIClient, prefix: str) -> dict[str, str]:
    """{volume: owner} of every workspace of the deployment (archives of removed accounts left out)."""
    found = client.volumes(filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}", LABEL_USER]})["Volumes"] or []
    return {v["Name"]: v["Labels"][LABEL_USER] for v in found if LABEL_ARCHIVE_OF not in v["Labels"]}


def listing(client: docker.APIClient, prefix: str, users: list[dict]) -> list[dict]:
    """Every workspace: owner, volume, size and last use (the owner's last activity in the hub)."""
    sizes = workspaces.volume_sizes(client)
    known = {u["name"]: u for u in users}
    rows = []
    for volume, owner in sorted(user_volumes(client, prefix).items(), key=lambda item: item[1]):
        user = known.get(owner) or {}
        size = sizes.get(volume)
        rows.append({
            "owner": owner,
            "volume": volume,
            "bytes": size,
            "size": human(size) if size is not None else "?",
            "last_use": user.get("last_activity") or ("" if user else "(no such user)"),
            "server": "running" if user.get("server") or user.get("pending") else "",
        })  # fmt: skip
    return rows


def backup(client: docker.APIClient, image: str, prefix: str, user: str, folder: str, now: datetime) -> str:
    """Archive ``user``'s workspace into the host folder ``folder``; the archive's host path."""
    volume = workspace_volume(prefix, user)
    if volume not in user_volumes(client, prefix):
        raise BackupError(f"{user} has no workspace ({volume}); nothing written")
    name = archive_name(user, now)
    run_helper(client, image, ["backup", "/workspace", f"/backups/{name}", "--owner", user], volume, folder, False)
    return posixpath.join(folder, name)


def restore(client: docker.APIClient, image: str, prefix: str, user: str, archive: str, *,
            any_owner: bool, force: bool) -> str:  # fmt: skip
    """Restore the host file ``archive`` into ``user``'s workspace (created if missing)."""
    volume = workspace_volume(prefix, user)
    created = volume not in user_volumes(client, prefix)
    if created:
        client.create_volume(volume, labels=owner_labels(prefix, user))
    folder, name = posixpath.split(archive)
    command = ["restore", f"/backups/{name}", "/workspace", "--owner", user,
               *(["--any-owner"] if any_owner else []), *(["--force"] if force else [])]  # fmt: skip
    try:
        return run_helper(client, image, command, volume, folder, True)
    except BackupError:
        if created:
            client.remove_volume(volume, force=True)  # leave things as they were
        raise


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
