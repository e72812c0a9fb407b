"""hubctl: the admin CLI. Runs inside the hub container (scripts/hubctl)."""

import argparse
import json
import re
import sys
import urllib.parse

from ..hubsecrets import INITIAL_ADMIN_PASSWORD, secret_path
from . import envs, gpus, ssh, workspaces
from .api import ApiError, HubApi
from .output import table

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """Seconds from "90", "90s", "30m", "12h" or "7d" (argparse type)."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected seconds or a duration like 30m, 12h, 7d; got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def token_lifetime(text: str) -> int | None:
    """A duration, or "never" (None: JupyterHub's token that does not expire)."""
    return None if text.strip() == "never" else duration(text)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def cmd_token(api: HubApi, args) -> str:
    user = args.user or api.settings["admin_users"][0]
    body = {"note": args.note, "expires_in": args.expires_in}
    return api.request("POST", f"/users/{_quote(user)}/tokens", body)["token"]


def _invite(api: HubApi, name: str, expires_in: int | None) -> str:
    body = {} if expires_in is None else {"expires_in": expires_in}
    invite = api.request("POST", f"/invites/{_quote(name)}", body)
    url, until = invite["url"], invite["expires_at"].replace("T", " ")[:16] + " UTC"
    text = f"one-time link for {name} to set their password, valid until {until}:\n  {url}"
    if "://" not in url:  # the hub knows its public address only if JupyterHub.public_url is set
        text += "\n(append it to the address users open the hub at, e.g. http://127.0.0.1:8000)"
    return text


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


def _as_first_admin(api: HubApi) -> HubApi:
    """JupyterHub lets only an admin grant admin, by the caller's own admin flag,
    which the scoped hubctl service lacks: act as the first admin, through a
    token (the service's "tokens" scope) that lives one minute."""
    admin = api.settings["admin_users"][0]
    body = {"note": "hubctl users add --admin", "expires_in": 60}
    return HubApi(api.url, api.request("POST", f"/users/{_quote(admin)}/tokens", body)["token"])


def cmd_users_add(api: HubApi, args) -> str:
    creator = _as_first_admin(api) if args.admin else api
    creator.request("POST", f"/users/{_quote(args.name)}", {"admin": args.admin})
    return f"added {args.name}{' (admin)' if args.admin else ''}; " + _invite(api, args.name, args.expires_in)


def cmd_users_invite(api: HubApi, args) -> str:
    return _invite(api, args.name, args.expires_in)


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
    """How to log in as the first admin, which the hub creates at its first start."""
    name = api.settings["admin_users"][0]
    path = secret_path(api.settings["data_dir"], INITIAL_ADMIN_PASSWORD)
    try:
        with open(path, encoding="utf-8") as f:
            password = f.read().strip()
    except FileNotFoundError:
        password = ""
    if not password:
        return (
            f"the password of the first admin {name!r} is unknown: {path} is missing or empty "
            f"(it is removed once that password is changed). To set a new one: scripts/hubctl users invite {name}"
        )
    return f"first admin: log in as {name!r} with password {password} (change it at /hub/change-password)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubctl", description="Administer the GPU JupyterHub.")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("token", help="print an admin-scoped API token for scripts")
    t.add_argument("--user", help="token owner (default: the first admin)")
    t.add_argument("--note", default="hubctl token")
    t.add_argument(
        "--expires-in",
        type=token_lifetime,
        default="1d",
        help="lifetime: seconds, 30m, 12h, 7d, or never (default: 1d)",
    )
    t.set_defaults(func=cmd_token)

    users = sub.add_parser("users", help="list, add, invite, remove users").add_subparsers(dest="action", required=True)
    ul = users.add_parser("list")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_users_list)
    lifetime = {"type": duration, "help": "link lifetime: seconds, 30m, 12h, 7d (default: the hub's, 7d)"}
    ua = users.add_parser("add", help="create a user; prints their one-time invitation link")
    ua.add_argument("name")
    ua.add_argument("--admin", action="store_true")
    ua.add_argument("--expires-in", **lifetime)
    ua.set_defaults(func=cmd_users_add)
    ui = users.add_parser("invite", help="a new invitation link (forgotten password, user made in the admin page)")
    ui.add_argument("name")
    ui.add_argument("--expires-in", **lifetime)
    ui.set_defaults(func=cmd_users_invite)
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

    fa = sub.add_parser("first-admin", help="print the first admin's initial password (used by make up)")
    fa.set_defaults(func=cmd_first_admin)

    gpus.add_parser(sub)
    envs.add_parser(sub)
    workspaces.add_parser(sub)
    ssh.add_parser(sub)
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
