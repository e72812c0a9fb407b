"""`hubctl workspaces`: every workspace (owner, size, last use); backups to and from files on
the host (backups.py); archived workspaces of removed accounts: list, archive, restore, delete."""

import json
import sys
import urllib.parse

import docker

from .. import workspaces
from ..names import safe_slug, workspace_volume
from . import backups
from .api import ApiError
from .output import table


def _client() -> docker.APIClient:
    return docker.from_env().api


def _server_running(api, user: str) -> bool:
    model = api.get(f"/users/{urllib.parse.quote(user, safe='')}")
    return bool(model.get("server") or model.get("pending"))


def cmd_list(api, args) -> str:
    rows = [vars(item) for item in workspaces.archives(_client(), api.settings["prefix"])]
    if args.json:
        return json.dumps(rows, indent=2)
    return table(rows, ["name", "owner", "archived_at"]) if rows else "no archived workspaces"


def cmd_archive(api, args) -> str:
    if _server_running(api, args.user):
        raise SystemExit(f"ERROR: {args.user}'s server is running; stop it first (hubctl servers stop)")
    prefix = api.settings["prefix"]
    volume = workspace_volume(prefix, args.user)
    name = workspaces.archive(_client(), api.settings["image"], volume, args.user, prefix, safe_slug(args.user))
    if name is None:
        return f"{args.user} has no workspace ({volume})"
    return f"archived the workspace of {args.user} as {name}; their next start gets an empty one"


def cmd_overview(api, args) -> str:
    rows = backups.listing(_client(), api.settings["prefix"], api.get("/users"))
    if args.json:
        return json.dumps(rows, indent=2)
    return table(rows, ["owner", "size", "last_use", "server", "volume"]) if rows else "no workspaces"


def cmd_backup(api, args) -> str:
    """One archive per workspace in the host folder DIR; a running server's only with --live."""
    if bool(args.user) == args.all:
        raise SystemExit("ERROR: name one user or give --all")
    client, prefix = _client(), api.settings["prefix"]
    folder = _host_path(args.dir)
    owners = sorted(backups.user_volumes(client, prefix).values()) if args.all else [args.user]
    image, lines, failed = backups.own_image(client), [], []
    for user in owners:
        if not args.live and _server_running(api, user):
            failed.append(f"{user}'s server is running: stop it first for a consistent copy, or add --live")
            continue
        try:
            lines.append(f"backed up {user} to {backups.backup(client, image, prefix, user, folder, backups.utcnow())}")
        except backups.BackupError as e:
            failed.append(f"{user}: {e}")
    if failed:
        raise SystemExit("\n".join([*lines, *(f"ERROR: {line}" for line in failed)]))
    return "\n".join(lines) or "no workspaces"


def _host_path(path: str) -> str:
    try:
        return backups.host_path(path)
    except backups.BackupError as e:
        raise SystemExit(f"ERROR: {e}") from None


def _restore_file(api, args) -> str:
    user, archive = args.archive, _host_path(args.file)  # restore NAME FILE
    try:
        api.get(f"/users/{urllib.parse.quote(user, safe='')}")
    except ApiError as e:
        raise SystemExit(f"ERROR: no user {user!r} ({e}); nothing restored") from None
    if _server_running(api, user):
        raise SystemExit(f"ERROR: {user}'s server is running; stop it first (hubctl servers stop)")
    client = _client()
    try:
        done = backups.restore(client, backups.own_image(client), api.settings["prefix"], user, archive,
                               any_owner=args.as_user, force=args.force)  # fmt: skip
    except backups.BackupError as e:
        raise SystemExit(f"ERROR: {e}") from None
    return f"restored {archive} as the workspace of {user} ({done})"


def cmd_restore(api, args) -> str:
    if args.file:
        return _restore_file(api, args)
    if args.force or args.as_user:
        raise SystemExit("ERROR: --force and --as are for an archive file: restore NAME FILE")
    client, prefix = _client(), api.settings["prefix"]
    item = workspaces.find_archive(client, prefix, args.archive)
    user = args.to or item.owner
    if _server_running(api, user):
        raise SystemExit(f"ERROR: {user}'s server is running; stop it first (hubctl servers stop)")
    workspaces.restore(client, api.settings["image"], item, workspace_volume(prefix, user), user, prefix)
    return f"restored {item.name} as the workspace of {user}"


def cmd_delete(api, args) -> str:
    client = _client()
    item = workspaces.find_archive(client, api.settings["prefix"], args.archive)
    confirm = args.confirm
    if confirm is None:
        print(f"This deletes {item.name} (the workspace of the removed account {item.owner}) for good.")
        print("Type its name again to confirm: ", end="", flush=True)
        confirm = sys.stdin.readline().strip()
    if confirm != item.name:
        raise SystemExit("ERROR: the name did not match; nothing deleted")
    client.remove_volume(item.name)
    return f"deleted {item.name}"


def add_parser(sub) -> None:
    w = sub.add_parser("workspaces", help="every workspace; backup, restore; archives: list, archive, delete")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_overview)
    actions = w.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="archived workspaces, their former owner and date")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    archive = actions.add_parser("archive", help="archive USER's workspace now (they start afresh)")
    archive.add_argument("user")
    archive.set_defaults(func=cmd_archive)
    backup = actions.add_parser("backup", help="USER|--all DIR: a .tar.gz per workspace in the host folder DIR")
    backup.add_argument("user", nargs="?")
    backup.add_argument("dir", help="a folder on the host (relative: to where scripts/hubctl runs)")
    backup.add_argument("--all", action="store_true", help="every workspace")
    backup.add_argument("--live", action="store_true", help="also while the server runs (files may be mid-write)")
    backup.set_defaults(func=cmd_backup)
    restore = actions.add_parser(
        "restore", help="NAME FILE: a backup file into NAME's workspace; ARCHIVE: an archive of a removed account"
    )
    restore.add_argument("archive", metavar="NAME|ARCHIVE")
    restore.add_argument("file", nargs="?", metavar="FILE", help="a backup archive on the host")
    restore.add_argument("--force", action="store_true", help="replace a workspace that is not empty")
    restore.add_argument("--as", dest="as_user", action="store_true", help="restore another user's backup as NAME's")
    restore.add_argument("--to", metavar="USER", help="an archive: give it to another user instead")
    restore.set_defaults(func=cmd_restore)
    delete = actions.add_parser("delete", help="delete an archive for good (asks for its name again)")
    delete.add_argument("archive")
    delete.add_argument("--confirm", metavar="ARCHIVE", help="the archive's name again, for scripts")
    delete.set_defaults(func=cmd_delete)
