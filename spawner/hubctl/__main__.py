"""hubctl: the admin CLI. Runs inside the hub container (scripts/hubctl); k8s-values,
which reads files only, runs anywhere the package is installed."""

import argparse
import json
import re
import sys
import time
import urllib.parse

from ..hubsecrets import INITIAL_ADMIN_PASSWORD, read_secret, secret_path
from ..providers import NATIVE, callback_url
from . import envs, gpus, ssh, workspaces
from . import usage as usage_cmd
from .api import ApiError, HubApi
from .k8svalues import add_parser as add_k8s_values_parser
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


def cmd_users_link(api: HubApi, args) -> str:
    """After a switch to an identity provider: its NAME signs in as the existing account NAME."""
    names = [u["name"] for u in api.get("/users")] if args.all else args.names
    if not names:
        return "nothing to link: name users, or --all"
    lines = []
    for name in names:
        result = api.request("POST", f"/provider-links/{_quote(name)}", {})
        note = "its hub password is removed" if result["had_password"] else "it had no hub password"
        lines.append(f"linked {name}: the provider's {name} signs in as this account ({note})")
    return "\n".join(lines)


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


def _active_servers(api: HubApi) -> dict[tuple[str, str], dict]:
    """Every server the hub has started or is starting: {(user, server name): its model}."""
    found, offset, page = {}, 0, 200
    while True:
        users = api.get(f"/users?state=active&offset={offset}&limit={page}")
        for user in users:
            for name, server in (user.get("servers") or {}).items():
                found[user["name"], name] = server
        if len(users) < page:
            return found
        offset += page


def _server_path(user: str, name: str) -> str:
    return f"/users/{_quote(user)}/servers/{_quote(name)}" if name else f"/users/{_quote(user)}/server"


def cmd_servers_stop_all(api: HubApi, args) -> str:
    """Stop every server through the hub, so that its database records them stopped; wait for them."""
    servers = _active_servers(api)
    failed = []
    for user, name in servers:
        try:
            api.request("DELETE", _server_path(user, name))
        except ApiError as e:
            failed.append(f"{user}{'/' + name if name else ''}: {e}")
    deadline = time.monotonic() + args.timeout
    left = set(servers)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left &= set(_active_servers(api))
    lines = [
        f"stopped the server of {user}{'/' + name if name else ''}"
        f" (profile {(server.get('user_options') or {}).get('profile') or 'default'})"
        for (user, name), server in servers.items()
        if (user, name) not in left
    ]
    if left:
        failed += [f"{user}{'/' + name if name else ''}: still running after {args.timeout}s" for user, name in left]
    if failed:
        raise SystemExit("\n".join([*lines, *(f"ERROR: {line}" for line in failed)]))
    return "\n".join(lines) or "no server was running"


def cmd_first_admin(api: HubApi, args) -> str:
    """How the first admin signs in: the hub's own account (created at its first
    start), or the identity provider, whose callback URL is printed to register."""
    auth = api.settings["auth"]
    if auth["provider"] != NATIVE:
        admins = ", ".join(api.settings["admin_users"] + [f"group {g}" for g in auth.get("admin_groups", [])])
        return (
            f"sign-in: through the {auth['provider']} provider; admins: {admins or 'none'}\n"
            f"register this callback (redirect) URL with the provider for client {auth['client_id']!r}:\n"
            f"  {callback_url(api.settings['public_url'], args.port)}\n"
            "(through an SSH tunnel, use the same local port: ssh -L "
            f"{args.port}:127.0.0.1:{args.port} <this-host>)"
        )
    name = api.settings["admin_users"][0]
    path = secret_path(api.settings["data_dir"], INITIAL_ADMIN_PASSWORD)
    password = read_secret(path)
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
    ul2 = users.add_parser("link", help="identity provider only: let its NAME sign in as the existing account NAME")
    ul2.add_argument("names", nargs="*", metavar="NAME")
    ul2.add_argument("--all", action="store_true", help="every existing account (trust the provider's names)")
    ul2.set_defaults(func=cmd_users_link)
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
    sa = servers.add_parser("stop-all", help="stop every server and wait (make down)")
    sa.add_argument("--timeout", type=duration, default="120", help="how long to wait (default: 120s)")
    sa.set_defaults(func=cmd_servers_stop_all)

    fa = sub.add_parser("first-admin", help="how the first admin signs in: password or provider callback (make up)")
    fa.add_argument("--port", type=int, default=8000, help="the hub's port on the host (HUB_PORT)")
    fa.set_defaults(func=cmd_first_admin)

    gpus.add_parser(sub)
    envs.add_parser(sub)
    workspaces.add_parser(sub)
    add_k8s_values_parser(sub)
    ssh.add_parser(sub)
    usage_cmd.add_parser(sub, duration)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        # a command that set needs_hub=False reads files only: it works where no hub runs
        print(args.func(HubApi() if getattr(args, "needs_hub", True) else None, args))
    except ApiError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
