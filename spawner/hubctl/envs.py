"""`hubctl envs`: team envs in the image, each user's personal envs, exports.

Everything runs in throwaway or running user containers (the hub container has
no conda); where the image has no conda (the stand-in) it says so.
"""

import json
import shlex

import docker

from ..condakernels import env_names, shadowed_team_envs, shadowing_message
from ..labels import LABEL_DEPLOYMENT, LABEL_USER
from .output import table

# Lists "<kind> <size-KiB> <path>" for the team envs and the personal envs
# folders named in the system .condarc (kernels/condarc).
_LIST_SCRIPT = r"""
[ -d /opt/conda/envs ] && for d in /opt/conda/envs/*/; do
  [ -d "$d" ] && echo "team $(du -sk "$d" | cut -f1) ${d%/}"; done
for top in $(sed -n '/^envs_dirs:/,/^[^ -]/s/^ *- *//p' /etc/conda/.condarc); do
  case $top in /home/*) for d in "$top"/*/; do
    [ -d "$d" ] && echo "personal $(du -sk "$d" | cut -f1) ${d%/}"; done ;; esac
done
true
"""


def _run(client, image: str, volume: str | None = None) -> list[tuple[str, int, str]]:
    mounts = {volume: {"bind": "/home/jovyan", "mode": "ro"}} if volume else {}
    out = client.containers.run(
        image, ["sh", "-c", _LIST_SCRIPT], entrypoint=[], volumes=mounts, remove=True, network_mode="none"
    )
    rows = []
    for line in out.decode().splitlines():
        kind, size, path = line.split(" ", 2)
        rows.append((kind, int(size), path))
    return rows


def env_rows(api, client=None) -> list[dict]:
    client = client or docker.from_env()
    image = api.settings["image"]
    team = [(kib, path) for kind, kib, path in _run(client, image) if kind == "team"]
    rows = [_row("(team)", kib, path) for kib, path in team]
    # Workspaces only (they carry their user's label), not archives of removed accounts.
    volumes = client.volumes.list(filters={"label": [f"{LABEL_DEPLOYMENT}={api.settings['prefix']}", LABEL_USER]})
    for volume in volumes:
        user = volume.attrs["Labels"].get(LABEL_USER, "?")
        personal = [(kib, path) for kind, kib, path in _run(client, image, volume.name) if kind == "personal"]
        rows += personal_rows(user, personal, [path for _, path in team])
    return rows


def _row(owner: str, kib: int, path: str) -> dict:
    return {"owner": owner, "env": path.rsplit("/", 1)[-1], "size_mib": kib // 1024, "path": path, "shadows": None}


def personal_rows(user: str, personal: list[tuple[int, str]], team_paths: list[str]) -> list[dict]:
    """Rows of one workspace's envs ((KiB, path) each). An env that takes a team
    env's name in nb_conda_kernels names it under "shadows", with a "warning"."""
    shadows = {s.taken_by: s for s in shadowed_team_envs(env_names(team_paths + [path for _, path in personal]))}
    rows = []
    for kib, path in personal:
        row = _row(user, kib, path)
        if path in shadows:
            row.update(shadows=shadows[path].name, warning=shadowing_message(shadows[path]))
        rows.append(row)
    return rows


def cmd_envs_list(api, args) -> str:
    rows = env_rows(api)
    if args.json:
        return json.dumps(rows, indent=2)
    notes = [f"WARNING: {r['owner']}: {r['warning']}" for r in rows if r.get("warning")]
    if not any(r["owner"] == "(team)" for r in rows):
        notes.append(f"(image {api.settings['image']} has no /opt/conda/envs: no team envs, e.g. the stand-in image)")
    return "\n".join([table(rows, ["owner", "env", "size_mib", "path", "shadows"]), *notes])


def cmd_envs_export(api, args) -> str:
    """Export USER's env ENV from their running server into their workspace."""
    client = docker.from_env()
    running = client.containers.list(
        filters={"label": [f"{LABEL_DEPLOYMENT}={api.settings['prefix']}", f"{LABEL_USER}={args.user}"]}
    )
    if not running:
        raise SystemExit(f"ERROR: {args.user} has no running server; start it first (hubctl servers start)")
    target = f"/home/jovyan/{args.env}/environment.yml"
    script = (
        "command -v conda >/dev/null || { echo 'this image has no conda (stand-in image?)' >&2; exit 3; }; "
        f"mkdir -p {shlex.quote(target.rsplit('/', 1)[0])} && "
        f"conda env export -n {shlex.quote(args.env)} > {shlex.quote(target)} && cat {shlex.quote(target)}"
    )
    code, out = running[0].exec_run(["bash", "-lc", script], user="1000")
    if code:
        raise SystemExit(f"ERROR: export of {args.env!r} for {args.user} failed: {out.decode().strip()}")
    return out.decode() + f"\n# written to {target} in {args.user}'s workspace"


def add_parser(sub) -> None:
    e = sub.add_parser("envs", help="conda environments: list, export").add_subparsers(dest="action", required=True)
    listing = e.add_parser("list", help="team envs in the image and each user's personal envs with sizes")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_envs_list)
    export = e.add_parser("export", help="write USER's env ENV as environment.yml in their workspace")
    export.add_argument("user")
    export.add_argument("env")
    export.set_defaults(func=cmd_envs_export)
