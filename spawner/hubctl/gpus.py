"""`hubctl gpus`: who holds which GPU, since when; free a GPU by stopping its server."""

import json
import urllib.parse

import docker

from .. import inventory, leases, swarmleases
from ..labels import LABEL_DEPLOYMENT
from .output import table


def gpu_rows(api, client=None, *, nvml=inventory.AUTO, run=inventory.AUTO) -> list[dict]:
    """One row per device with its holders (from container labels) and usage.

    The inventory and the usage columns come from ``spawner.inventory``, in
    the hub container (where scripts/hubctl runs this): NVML where the hub was
    started with docker-compose.nvidia.yml, else the ``gpus`` setting and no
    usage. ``nvml`` and ``run`` are inventory's seams, passed through.
    """
    client = client or docker.from_env()
    devices = inventory.discover(api.settings["gpus"], nvml=nvml, run=run)
    found = [(c.name, c.labels) for c in client.containers.list(all=True, filters={"label": leases.LABEL_GPUS})]
    held = leases.leases_from_containers(found)
    usage = inventory.usage(nvml=nvml)
    rows = []
    for gpu in devices:
        holders = [lease for lease in held if gpu.id in lease.gpus]
        used = usage.get(gpu.id, {})
        rows.append(
            {
                "gpu": gpu.id,
                "name": gpu.name or "",
                "memory_mib": gpu.memory_mib,
                **leases.holder_fields(holders),
                "utilization_percent": used.get("utilization_percent"),
                "memory_used_mib": used.get("memory_used_mib"),
            }
        )
    return rows


def swarm_gpu_rows(api, client=None) -> list[dict]:
    """On a Swarm (engine: swarm): the nodes' GPUs and the user tasks holding them."""
    client = client or docker.from_env()
    services = client.api.services(filters={"label": f"{LABEL_DEPLOYMENT}={api.settings['prefix']}"})
    tasks = client.api.tasks(filters={"desired-state": "running"})
    return swarmleases.gpu_rows(client.api.nodes(), services, tasks, swarmleases.DEFAULT_KIND)


def cmd_gpus(api, args, client=None, *, nvml=inventory.AUTO, run=inventory.AUTO) -> str:
    if api.settings.get("engine") == "swarm":
        rows = swarm_gpu_rows(api, client)
        if args.json:
            return json.dumps(rows, indent=2)
        flat = [{**row, "users": ", ".join(row["users"]) or "-"} for row in rows]
        return table(flat, ["node", "gpu", "users", "mode", "since"])
    rows = gpu_rows(api, client, nvml=nvml, run=run)
    if args.json:
        return json.dumps(rows, indent=2)
    flat = [
        {
            **row,
            "users": ", ".join(row["users"]) or "-",
            "util": "" if row["utilization_percent"] is None else f"{row['utilization_percent']}%",
            "mem_used": "" if row["memory_used_mib"] is None else f"{row['memory_used_mib']}/{row['memory_mib']} MiB",
        }
        for row in rows
    ]
    return table(flat, ["gpu", "name", "users", "mode", "since", "util", "mem_used"])


def cmd_gpus_free(api, args) -> str:
    found = swarm_gpu_rows(api) if api.settings.get("engine") == "swarm" else gpu_rows(api)
    rows = {row["gpu"]: row for row in found}
    if args.id not in rows:
        raise SystemExit(f"ERROR: no GPU {args.id!r}; known: {', '.join(rows) or 'none'}")
    users = rows[args.id]["users"]
    if not users:
        return f"GPU {args.id} is free"
    for user in users:
        api.request("DELETE", f"/users/{urllib.parse.quote(user, safe='')}/server")
    return f"GPU {args.id}: stopped the server of {', '.join(users)}"


def add_parser(sub) -> None:
    g = sub.add_parser("gpus", help="GPUs, who holds each and since when; `gpus free ID`")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpus)
    actions = g.add_subparsers(dest="action")
    free = actions.add_parser("free", help="stop the server holding GPU ID")
    free.add_argument("id")
    free.set_defaults(func=cmd_gpus_free)
