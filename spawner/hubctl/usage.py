"""`hubctl usage`: GPU-hours and server-hours from the ledger the hub keeps (spawner/usage.py)."""

import csv
import io
import json
import os
import time

from .. import usage
from .output import table


def ledger_path(settings) -> str:
    return os.path.join(settings["data_dir"], usage.LEDGER_FILE)


def user_groups(api) -> dict[str, list[str]]:
    """user -> the hub's groups they are in."""
    found: dict[str, list[str]] = {}
    for group in api.get("/groups"):
        for user in group.get("users", []):
            found.setdefault(user, []).append(group["name"])
    return found


def cmd_usage(api, args) -> str:
    path = ledger_path(api.settings)
    if not os.path.exists(path):
        raise SystemExit(f"ERROR: no ledger at {path} yet: the hub's usage service writes it within seconds of start")
    rows = usage.read_servers(path)
    now = time.time()
    groups = user_groups(api) if args.by == "group" else None
    found = usage.totals(rows, since=now - args.since, now=now, by=args.by, groups=groups)
    records = [
        {args.by: key, "gpu_hours": round(v["gpu_hours"], 3), "server_hours": round(v["server_hours"], 3)}
        for key, v in found.items()
    ]
    columns = [args.by, "gpu_hours", "server_hours"]
    if args.json:
        return json.dumps(records, indent=2)
    if args.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue().rstrip("\n")
    return table(records, columns) if records else f"no server ran in the last {args.since // 3600} hours"


def add_parser(sub, duration) -> None:
    u = sub.add_parser("usage", help="GPU-hours and server-hours per user, group or profile")
    u.add_argument("--since", type=duration, default="30d", help="how far back: 12h, 7d (default: 30d)")
    u.add_argument("--by", choices=usage.BY, default="user")
    form = u.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true")
    form.add_argument("--json", action="store_true")
    u.set_defaults(func=cmd_usage)
