"""Back up the hub's database before an upgrade: a dated copy beside it, the last N kept.

    python3 -m spawner.backup [--data-dir DIR] [--keep N]

Uses SQLite's online backup, so the copy is consistent while the hub runs. Standard
library only: `scripts/upgrade` pipes this file into the python of the hub that is
running (an older image may not have it), or of a one-off container on the data volume.
Backups hold password hashes and tokens: mode 600, in a directory of mode 700.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

DB_NAME = "jupyterhub.sqlite"  # as spawner/configure.py sets db_url
BACKUP_DIR = "backups"
_BACKUP = re.compile(r"^jupyterhub-\d{8}T\d{6}Z\.sqlite$")


def backup(data_dir: Path, keep: int, now: datetime | None = None) -> tuple[Path, list[Path]]:
    """Copy ``data_dir``'s database to ``backups/jupyterhub-<UTC time>.sqlite``; remove all
    but the newest ``keep`` backups. Returns (the new backup, the removed ones)."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    source = data_dir / DB_NAME
    if not source.is_file():
        raise FileNotFoundError(f"no hub database at {source}")
    folder = data_dir / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"jupyterhub-{stamp}.sqlite"
    partial = target.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # mode 600 from the start
    os.close(fd)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    partial.replace(target)  # a backup under its final name is always whole
    backups = sorted(p for p in folder.iterdir() if _BACKUP.match(p.name))  # names sort by time
    removed = backups[:-keep]
    for old in removed:
        old.unlink()
    return target, removed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spawner.backup", description="Back up the hub's database.")
    p.add_argument("--data-dir", type=Path, default=Path("/srv/jupyterhub/data"))
    p.add_argument("--keep", type=int, default=5, help="how many backups to keep (default 5)")
    args = p.parse_args(argv)
    try:
        target, removed = backup(args.data_dir, args.keep)
    except (ValueError, OSError, sqlite3.Error) as e:
        print(f"ERROR: backup of the hub's database failed: {e}", file=sys.stderr)
        return 1
    print(f"hub database backed up to {target}")
    for old in removed:
        print(f"removed the older backup {old.name} (keeping {args.keep})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
