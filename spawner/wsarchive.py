"""Workspace backups as compressed tar archives: write one, check one, restore one.

    python3 -m spawner.wsarchive backup DIR FILE --owner NAME
    python3 -m spawner.wsarchive restore FILE DIR --owner NAME [--any-owner] [--force]

Runs as root in a throwaway container of the hub image that has the workspace
volume at DIR and the admin's backup folder mounted (spawner/hubctl/backups.py),
so owners and modes are kept both ways. Standard library only.

An archive names its owner in a pax global header (``gpuhub.owner``), which is
never extracted. Before anything is written, a restore reads the whole archive:
a corrupted one (bad gzip data or checksum, a truncated tar) and a hostile one
(absolute paths, ``..``, links that lead outside, device files, FIFOs,
set-user-ID files) are
refused whole, and the workspace is left as it was.
"""

from __future__ import annotations

import argparse
import gzip
import os
import posixpath
import shutil
import sys
import tarfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

OWNER_HEADER = "gpuhub.owner"
CREATED_HEADER = "gpuhub.created"
ROOT_HEADER = "gpuhub.root"  # "uid:gid:mode" of the workspace folder itself (a new volume's is root's)
SUFFIX = ".tar.gz"


class ArchiveError(ValueError):
    """An archive that cannot be written or restored; the message says why."""


def backup(source: Path, target: Path, owner: str) -> int:
    """Write every file under ``source`` into ``target`` (mode 600); the number of entries."""
    if target.exists():
        raise ArchiveError(f"{target.name} exists already; nothing written")
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # workspaces hold private files
    top = source.stat()
    headers = {
        OWNER_HEADER: owner,
        CREATED_HEADER: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ROOT_HEADER: f"{top.st_uid}:{top.st_gid}:{top.st_mode & 0o7777:o}",
    }
    count = 0
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT,
                                                      pax_headers=headers) as tar:  # fmt: skip
            for entry in sorted(os.listdir(source)):
                tar.add(source / entry, arcname=entry)  # recursive; symlinks stored as links
            count = len(tar.getmembers())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)  # an archive under its final name is always whole
    return count


def _inside(path: str) -> bool:
    """A normalised relative path that stays under the root."""
    return not path.startswith("/") and path != ".." and not path.startswith("../")


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be restored, or None."""
    name = member.name
    if not name or name.startswith("/"):
        return f"{name!r}: an absolute or empty path"
    if ".." in name.split("/"):
        return f"{name!r}: a path with '..'"
    if member.isdev() or member.isfifo():
        return f"{name!r}: a device file or FIFO"
    if member.mode & 0o6000 and not member.issym():
        return f"{name!r}: a set-user-ID or set-group-ID file"  # a workspace never needs one
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return f"{name!r}: not a file, directory or link"
    if member.issym():
        if member.linkname.startswith("/"):
            return f"{name!r}: a symlink to the absolute path {member.linkname!r}"
        if not _inside(posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))):
            return f"{name!r}: a symlink leading outside the workspace ({member.linkname!r})"
    if member.islnk() and not _inside(posixpath.normpath(member.linkname)):
        return f"{name!r}: a hard link to {member.linkname!r}, outside the workspace"
    return None


def _root(text: str) -> tuple[int, int, int] | None:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2], 8) & 0o777


def check(archive: Path) -> tuple[str, list[tarfile.TarInfo], tuple[int, int, int] | None]:
    """(owner, members, (uid, gid, mode) of the folder) of a whole, harmless archive; ArchiveError otherwise."""
    try:
        with gzip.open(archive, "rb") as f:  # every byte, so the gzip checksum is verified
            while f.read(1 << 20):
                pass
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            owner = tar.pax_headers.get(OWNER_HEADER, "")
            root = _root(tar.pax_headers.get(ROOT_HEADER, ""))
    except FileNotFoundError:
        raise ArchiveError(f"no archive {archive.name}") from None
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
        raise ArchiveError(f"{archive.name} is corrupted or not a workspace archive ({e}); nothing restored") from None
    if not owner:
        raise ArchiveError(f"{archive.name} is not a workspace backup (no {OWNER_HEADER} header); nothing restored")
    problems = [p for p in map(member_problem, members) if p]
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ArchiveError(f"{archive.name} is refused, nothing restored: {'; '.join(problems[:3])}{more}")
    return owner, members, root


def restore(archive: Path, target: Path, owner: str, any_owner: bool = False, force: bool = False) -> int:
    """Extract a checked archive into ``target`` (emptied first with ``force``); the number of entries."""
    found, members, root = check(archive)
    if found != owner and not any_owner:
        raise ArchiveError(
            f"{archive.name} is the workspace of {found!r}, not {owner!r}; add --as to restore it anyway"
        )
    existing = os.listdir(target)
    if existing and not force:
        raise ArchiveError(
            f"the workspace of {owner} is not empty ({len(existing)} entries); add --force to replace it"
        )
    for entry in existing:
        path = target / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    with tarfile.open(archive, mode="r:gz") as tar:
        # checked above; "fully_trusted" keeps owners and modes as archived (Python >= 3.11.4 asks)
        kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tar.extractall(target, members=members, numeric_owner=True, **kwargs)
    if root:
        os.chown(target, root[0], root[1])
        os.chmod(target, root[2])
    return len(members)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spawner.wsarchive", description="Back up or restore one workspace.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup")
    b.add_argument("source", type=Path)
    b.add_argument("archive", type=Path)
    b.add_argument("--owner", required=True)
    r = sub.add_parser("restore")
    r.add_argument("archive", type=Path)
    r.add_argument("target", type=Path)
    r.add_argument("--owner", required=True)
    r.add_argument("--any-owner", action="store_true")
    r.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.cmd == "backup":
            print(f"{backup(args.source, args.archive, args.owner)} entries")
        else:
            print(f"{restore(args.archive, args.target, args.owner, args.any_owner, args.force)} entries")
    except (ArchiveError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
