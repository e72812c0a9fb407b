"""GPU-hours accounting: a ledger of every user server, kept in SQLite in the hub's data volume.

Docker is the truth (DESIGN.md, decision 1): ``record`` reads the Docker
events since the ledger was last brought up to date, then the containers that
exist, and writes what they say, in one transaction together with the moment
it is valid until. Rows are keyed by container id and only ever gain an end,
so running it again (a hub restart, a replayed event) never counts a server
twice. A server that vanished while nothing watched and whose events Docker
no longer holds ends at that last moment: hours are undercounted, never
invented. The hub runs ``python3 -m spawner.usage`` as a managed service; the
Docker calls block, which is fine in that process of its own.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import docker

from .labels import LABEL_DEPLOYMENT, LABEL_LEASED_AT, LABEL_PROFILE, LABEL_USER
from .leases import gpus_of, parse_time

log = logging.getLogger(__name__)

LEDGER_FILE = "usage.sqlite"  # next to jupyterhub.sqlite in the data directory
BY = ("user", "group", "profile")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    container TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user TEXT NOT NULL,
    profile TEXT NOT NULL,
    gpus TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    end_reason TEXT
);
CREATE TABLE IF NOT EXISTS watermark (id INTEGER PRIMARY KEY CHECK (id = 0), until REAL NOT NULL);
"""


@dataclass(frozen=True)
class Server:
    """One row of the ledger: times are Unix seconds, ``ended`` None while it runs."""

    container: str
    name: str
    user: str
    profile: str
    gpus: tuple[str, ...]
    started: float
    ended: float | None
    end_reason: str | None


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.executescript(_SCHEMA)
    return db


def _start_of(labels: Mapping[str, str], fallback: float) -> float:
    """The lease's own time where the container has one, else ``fallback`` (its creation or start)."""
    try:
        return parse_time(labels.get(LABEL_LEASED_AT, "")).timestamp()
    except ValueError:
        return fallback


def _open(db: sqlite3.Connection, container: str, name: str, labels: Mapping[str, str], fallback: float) -> None:
    gpus = gpus_of(labels)
    db.execute(
        "INSERT OR IGNORE INTO servers (container, name, user, profile, gpus, gpu_count, started)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (container, name, labels[LABEL_USER], labels.get(LABEL_PROFILE, ""), ",".join(gpus), len(gpus),
         _start_of(labels, fallback)),
    )  # fmt: skip


def _close(db: sqlite3.Connection, container: str, when: float, reason: str) -> None:
    db.execute(
        "UPDATE servers SET ended = ?, end_reason = ? WHERE container = ? AND ended IS NULL",
        (max(when, _started(db, container)), reason, container),
    )


def _started(db: sqlite3.Connection, container: str) -> float:
    row = db.execute("SELECT started FROM servers WHERE container = ?", (container,)).fetchone()
    return row[0] if row else 0.0


def apply_event(db: sqlite3.Connection, event: Mapping) -> None:
    """One Docker container event (start, die, destroy) onto the ledger; replaying it changes nothing."""
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    container, action = actor.get("ID") or event.get("id"), event.get("Action") or event.get("status")
    if not container or LABEL_USER not in attrs:
        return
    when = event["timeNano"] / 1e9 if "timeNano" in event else float(event["time"])
    if action == "start":
        _open(db, container, attrs.get("name", ""), attrs, when)
    elif action == "die":
        _close(db, container, when, f"exited (code {attrs.get('exitCode', '?')})")
    elif action == "destroy":
        _close(db, container, when, "removed")


def watermark(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT until FROM watermark WHERE id = 0").fetchone()
    return row[0] if row else None


# Container states that mean it ran and stopped; "created" has not started yet and stays open.
ENDED_STATES = {"exited", "dead"}


def record(db: sqlite3.Connection, client: docker.DockerClient, prefix: str) -> float:
    """Bring the ledger up to now from Docker; return the moment it is valid until."""
    since = watermark(db)
    ours = f"{LABEL_DEPLOYMENT}={prefix}"
    containers = client.api.containers(all=True, filters={"label": [ours, LABEL_USER]})
    # Docker logs a container's death before it leaves the listing: the events up to this
    # moment say when each container missing above ended (read after the listing, for that).
    now = time.time()
    events: list[Mapping] = []
    if since is not None and since < now:
        filters = {"type": "container", "label": [ours, LABEL_USER], "event": ["start", "die", "destroy"]}
        events = list(client.api.events(since=f"{since:.6f}", until=f"{now:.6f}", filters=filters, decode=True))
    apply_round(db, events, containers, now, lambda container: _finished(client, container, now))
    return now


def apply_round(
    db: sqlite3.Connection,
    events: Iterable[Mapping],
    containers: Iterable[Mapping],
    now: float,
    finished_at: Callable[[str], float],
) -> None:
    """One round, in one transaction with the new watermark ``now``: ``events`` since the last
    watermark, then ``containers`` as Docker lists them (``finished_at(id)``: when an exited one
    stopped); a server neither lists nor an event ended ends at the last watermark."""
    since = watermark(db)
    with db:
        for event in events:
            apply_event(db, event)
        present = set()
        for c in containers:
            present.add(c["Id"])
            _open(db, c["Id"], c["Names"][0].lstrip("/"), c["Labels"], float(c["Created"]))
            if c["State"] in ENDED_STATES:
                _close(db, c["Id"], finished_at(c["Id"]), "exited")
        for (container,) in db.execute("SELECT container FROM servers WHERE ended IS NULL").fetchall():
            if container not in present:  # gone, and Docker no longer says when: the last moment it was seen
                _close(db, container, since if since is not None else now, "gone while the hub was down")
        db.execute("INSERT OR REPLACE INTO watermark (id, until) VALUES (0, ?)", (now,))


def _finished(client: docker.DockerClient, container: str, default: float) -> float:
    try:
        text = client.api.inspect_container(container)["State"]["FinishedAt"]
    except docker.errors.NotFound:
        return default
    try:
        return parse_time(text).timestamp()
    except ValueError:
        return default


def servers(db: sqlite3.Connection) -> list[Server]:
    rows = db.execute(
        "SELECT container, name, user, profile, gpus, started, ended, end_reason FROM servers ORDER BY started"
    ).fetchall()
    return [Server(c, n, u, p, tuple(g.split(",")) if g else (), s, e, r) for c, n, u, p, g, s, e, r in rows]


def read_servers(path: str) -> list[Server]:
    """Every server interval in the ledger at ``path`` (which must exist). Blocking."""
    db = connect(path)
    try:
        return servers(db)
    finally:
        db.close()


def totals(
    rows: Iterable[Server],
    *,
    since: float,
    now: float,
    by: str = "user",
    groups: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """{key: {"gpu_hours", "server_hours"}} of the time each server ran within [since, now].

    ``by`` is user, profile or group; by group a user's hours count in each of
    their groups (``groups``: user -> group names), "(no group)" for none.
    """
    if by not in BY:
        raise ValueError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    result: dict[str, dict[str, float]] = {}
    for row in rows:
        hours = (min(row.ended if row.ended is not None else now, now) - max(row.started, since)) / 3600
        if hours <= 0:
            continue
        if by == "group":
            keys = list((groups or {}).get(row.user, ())) or ["(no group)"]
        else:
            keys = [row.profile or "(unknown)"] if by == "profile" else [row.user]
        for key in keys:
            entry = result.setdefault(key, {"gpu_hours": 0.0, "server_hours": 0.0})
            entry["gpu_hours"] += hours * len(row.gpus)
            entry["server_hours"] += hours
    return dict(sorted(result.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m spawner.usage", description="Keep the GPU-hours ledger (hub service).")
    p.add_argument("--db", required=True, help="the ledger, e.g. /srv/jupyterhub/data/usage.sqlite")
    p.add_argument("--prefix", required=True, help="the deployment label of the hub's containers")
    p.add_argument("--every", type=float, default=10.0, help="seconds between updates")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[usage %(asctime)s] %(message)s")
    db, client = connect(args.db), docker.from_env(timeout=60)
    log.info("GPU-hours ledger %s: resuming from %s", args.db, watermark(db))
    try:
        while True:
            try:
                record(db, client, args.prefix)
            except (docker.errors.DockerException, OSError) as e:  # the engine restarting: try again next round
                log.warning("cannot read Docker now: %s", e)
            except sqlite3.OperationalError as e:  # e.g. locked past the timeout: the round was rolled back
                log.warning("cannot write the ledger now: %s", e)
            time.sleep(args.every)
    except KeyboardInterrupt:  # how the hub stops its services; an unfinished round was rolled back
        log.info("stopped; the next start resumes from %s", watermark(db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
