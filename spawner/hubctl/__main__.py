"""hubctl: the admin CLI. Runs inside the hub container (scripts/hubctl)."""

import argparse
import json
import os
import secrets
import sys
import urllib.parse

from ..hubsecrets import ensure_secret
from . import envs, gpus, workspaces
from .api import ApiError, HubApi
from .output import table
from .signup import signup


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def cmd_token(api: HubApi, args) -> str:
    user = args.user or api.settings["admin_users"][0]
    body = {"note": args.note, "expires_in": args.expires_in or None}
    return api.request("POST", f"/users/{_quote(user)}/tokens", body)["token"]


def cmd_users_list(api: HubApi, args) -> str:
    users = api.get("/users")
    rows = [
        {
            "name": u["name"],
            "admin": "yes" if u["admin"] else "",
            "server": "running" if u.get("server") else (u.get("pending") or ""),
            "last_activity": u.get("last_activity") or "",
        }
        for u in users
    ]
    return json.dumps(rows, indent=2) if args.json else table(rows, ["name", "admin", "server", "last_activity"])


def cmd_users_add(api: HubApi, args) -> str:
    api.request("POST", f"/users/{_quote(args.name)}", {"admin": args.admin})
    return (
        f"added {args.name}{' (admin)' if args.admin else ''}: they sign up at /hub/signup "
        "with a password of their own and can log in at once (pre-approved)"
    )


def cmd_users_remove(api: HubApi, args) -> str:
    user = api.get(f"/users/{_quote(args.name)}")
    if user.get("server") or user.get("pending"):
        api.request("DELETE", f"/users/{_quote(args.name)}/server")
    api.request("DELETE", f"/users/{_quote(args.name)}")
    return f"removed {args.name} (their workspace is archived: hubctl workspaces list)"


def cmd_servers_list(api: HubApi, args) -> str:
    users = api.get("/users?state=active")
    rows = [
        {
            "user": u["name"],
            "state": "running" if u.get("server") else (u.get("pending") or ""),
            "url": u.get("server") or "",
            "profile": (u.get("servers", {}).get("", {}).get("user_options") or {}).get("profile", ""),
            "started": u.get("servers", {}).get("", {}).get("started") or "",
        }
        for u in users
    ]
    return json.dumps(rows, indent=2) if args.json else table(rows, ["user", "state", "profile", "started", "url"])


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"ERROR: --option takes key=value, got {pair!r}")
        options[key] = int(value) if key == "gpus" and value.isdigit() else value
    return options


def cmd_servers_start(api: HubApi, args) -> str:
    options = _options(args.option)
    if args.profile:
        options["profile"] = args.profile
    api.request("POST", f"/users/{_quote(args.name)}/server", options)
    return f"server of {args.name} requested"


def cmd_servers_stop(api: HubApi, args) -> str:
    api.request("DELETE", f"/users/{_quote(args.name)}/server")
    return f"server of {args.name} stopping"


def cmd_first_admin(api: HubApi, args) -> str:
    """Create the first admin with a generated password, once."""
    name = api.settings["admin_users"][0]
    path = os.path.join(api.settings["data_dir"], "secrets", "initial_admin_password")
    if os.path.exists(path):
        return f"first admin exists: log in as {name!r} with password {ensure_secret(path)} (unless changed since)"
    password = secrets.token_urlsafe(18)
    message = signup(args.hub_url, name, password)
    if "success" not in message.lower():
        raise SystemExit(f"ERROR: could not create the first admin {name!r}: {message or 'no answer'}")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(password + "\n")
    return f"first admin created: log in as {name!r} with password {password} (change it at /hub/change-password)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubctl", description="Administer the GPU JupyterHub.")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("token", help="print an admin-scoped API token for scripts")
    t.add_argument("--user", help="token owner (default: the first admin)")
    t.add_argument("--note", default="hubctl token")
    t.add_argument("--expires-in", type=int, default=0, help="seconds (default: never)")
    t.set_defaults(func=cmd_token)

    users = sub.add_parser("users", help="list, add, remove users").add_subparsers(dest="action", required=True)
    ul = users.add_parser("list")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_users_list)
    ua = users.add_parser("add", help="create (and pre-approve) a user")
    ua.add_argument("name")
    ua.add_argument("--admin", action="store_true")
    ua.set_defaults(func=cmd_users_add)
    ur = users.add_parser("remove")
    ur.add_argument("name")
    ur.set_defaults(func=cmd_users_remove)

    servers = sub.add_parser("servers", help="list, start, stop servers").add_subparsers(dest="action", required=True)
    sl = servers.add_parser("list")
    sl.add_argument("--json", action="store_true")
    sl.set_defaults(func=cmd_servers_list)
    ss = servers.add_parser("start")
    ss.add_argument("name")
    ss.add_argument("--profile", help="profile slug, e.g. gpu-1")
    ss.add_argument("--option", action="append", default=[], help="profile option key=value")
    ss.set_defaults(func=cmd_servers_start)
    st = servers.add_parser("stop")
    st.add_argument("name")
    st.set_defaults(func=cmd_servers_stop)

    fa = sub.add_parser("first-admin", help="create the first admin (used by make up)")
    fa.add_argument("--hub-url", default="http://127.0.0.1:8000")
    fa.set_defaults(func=cmd_first_admin)

    gpus.add_parser(sub)
    envs.add_parser(sub)
    workspaces.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        print(args.func(HubApi(), args))
    except ApiError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
