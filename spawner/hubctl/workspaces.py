"""`hubctl workspaces`: archived workspaces of removed accounts: list, archive, restore, delete."""

import json
import sys
import urllib.parse

import docker

from .. import workspaces
from ..names import safe_slug, workspace_volume
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


def cmd_restore(api, args) -> str:
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
    w = sub.add_parser("workspaces", help="archived workspaces: list, archive, restore, delete")
    actions = w.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="archived workspaces, their former owner and date")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    archive = actions.add_parser("archive", help="archive USER's workspace now (they start afresh)")
    archive.add_argument("user")
    archive.set_defaults(func=cmd_archive)
    restore = actions.add_parser("restore", help="make an archive the workspace of its owner again")
    restore.add_argument("archive")
    restore.add_argument("--to", metavar="USER", help="give it to another user instead")
    restore.set_defaults(func=cmd_restore)
    delete = actions.add_parser("delete", help="delete an archive for good (asks for its name again)")
    delete.add_argument("archive")
    delete.add_argument("--confirm", metavar="ARCHIVE", help="the archive's name again, for scripts")
    delete.set_defaults(func=cmd_delete)
