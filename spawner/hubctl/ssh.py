"""`hubctl ssh sessions`: who has SSH connections open into their container, since when.

SSH into a container (README "From your laptop") is served by that
container's own sshd, run as the user; each connection has one process titled
"sshd: jovyan@TTY" (notty for commands, scp and port forwards). They are read
from /proc in each running user container, as uid 1000.
"""

import json
from datetime import datetime, timezone

import docker

from ..labels import LABEL_DEPLOYMENT, LABEL_USER
from .output import table

# "<start, seconds since the epoch> <title>" of each connection's process, one line each.
# The user owns these processes and can set any title or name: a newline in a title
# is made a space (it would forge a line), and the start time is counted from after
# the name's closing ")" in /proc/PID/stat (a name may hold spaces and parentheses).
_SESSIONS_SCRIPT = r"""
ticks=$(getconf CLK_TCK); boot=$(awk '/^btime/ {print $2}' /proc/stat)
for p in /proc/[0-9]*; do
  title=$(tr '\0\n' '  ' <"$p/cmdline" 2>/dev/null) || continue
  case $title in
    "sshd: "*@*)
      start=$(sed 's/.*) //' "$p/stat" 2>/dev/null | awk '{print $20}')
      case $start in '' | *[!0-9]*) continue ;; esac
      echo "$((boot + start / ticks)) ${title#sshd: }" ;;
  esac
done
true
"""


def session_rows(prefix: str, client=None) -> list[dict]:
    client = client or docker.from_env()
    running = client.containers.list(filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}", LABEL_USER]})
    rows = []
    for container in running:
        code, out = container.exec_run(["sh", "-c", _SESSIONS_SCRIPT], user="1000")
        if code:
            raise SystemExit(f"ERROR: reading {container.name}'s processes failed: {out.decode().strip()}")
        for line in out.decode().splitlines():
            start, session = line.split(" ", 1)
            since = datetime.fromtimestamp(int(start), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append({"user": container.labels[LABEL_USER], "session": session.strip(), "since": since})
    return sorted(rows, key=lambda r: (r["user"], r["since"]))


def cmd_ssh_sessions(api, args) -> str:
    rows = session_rows(api.settings["prefix"])
    if args.json:
        return json.dumps(rows, indent=2)
    return table(rows, ["user", "session", "since"]) if rows else "no SSH sessions open"


def add_parser(sub) -> None:
    s = sub.add_parser("ssh", help="SSH into users' containers: open sessions").add_subparsers(
        dest="action", required=True
    )
    sessions = s.add_parser("sessions", help="open SSH connections per user, since when")
    sessions.add_argument("--json", action="store_true")
    sessions.set_defaults(func=cmd_ssh_sessions)
