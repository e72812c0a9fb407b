"""spawner.wsarchive: a workspace archive round trip, and every archive a restore
must refuse whole (corrupted, hostile, another owner's, over a non-empty workspace)."""

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from spawner.wsarchive import OWNER_HEADER, ArchiveError, backup, check, main, restore


@pytest.fixture
def workspace(tmp_path) -> Path:
    home = tmp_path / "home"
    (home / "proj/.hidden").mkdir(parents=True)
    (home / "notes.txt").write_text("notes\n")
    (home / "proj/.hidden/key").write_text("s3cret\n")
    os.chmod(home / "proj/.hidden/key", 0o600)
    os.chmod(home / "proj", 0o750)
    (home / "link").symlink_to("notes.txt")
    os.link(home / "notes.txt", home / "proj/hard")
    return home


def tree(root: Path) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        target = os.readlink(path) if path.is_symlink() else ""
        content = path.read_text() if path.is_file() and not path.is_symlink() else ""
        found.append((str(path.relative_to(root)), stat.S_IMODE(info.st_mode), target + content))
    return found


def test_a_backup_restores_files_modes_and_links_and_is_private(workspace, tmp_path):
    archive = tmp_path / "ada.tar.gz"
    assert backup(workspace, archive, "ada") == 6
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    target = tmp_path / "restored"
    target.mkdir()
    assert restore(archive, target, "ada") == 6
    assert tree(target) == tree(workspace)
    assert (target / "proj/hard").stat().st_ino == (target / "notes.txt").stat().st_ino
    assert check(archive)[0] == "ada"


def test_a_backup_never_overwrites_an_archive(workspace, tmp_path):
    archive = tmp_path / "ada.tar.gz"
    archive.write_text("older")
    with pytest.raises(ArchiveError, match="exists already"):
        backup(workspace, archive, "ada")
    assert archive.read_text() == "older"


@pytest.fixture
def archive(workspace, tmp_path) -> Path:
    path = tmp_path / "ada.tar.gz"
    backup(workspace, path, "ada")
    return path


@pytest.fixture
def occupied(tmp_path) -> Path:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    return target


def test_a_non_empty_workspace_is_replaced_only_with_force(archive, occupied, workspace):
    with pytest.raises(ArchiveError, match="not empty.*--force"):
        restore(archive, occupied, "ada")
    assert tree(occupied) == [("keep.txt", 0o644, "mine\n")]
    restore(archive, occupied, "ada", force=True)
    assert tree(occupied) == tree(workspace)


def test_another_users_archive_needs_as(archive, tmp_path, workspace):
    target = tmp_path / "bob"
    target.mkdir()
    with pytest.raises(ArchiveError, match="is the workspace of 'ada', not 'bob'; add --as"):
        restore(archive, target, "bob")
    assert list(target.iterdir()) == []
    restore(archive, target, "bob", any_owner=True)
    assert tree(target) == tree(workspace)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_corrupted_archive_is_refused_and_nothing_changes(archive, occupied, damage):
    data = archive.read_bytes()
    middle = len(data) // 2
    archive.write_bytes({
        "flip": data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :],
        "truncate": data[:middle],
        "garbage": b"not an archive at all",
    }[damage])  # fmt: skip
    with pytest.raises(ArchiveError, match="corrupted"):
        restore(archive, occupied, "ada", force=True)
    assert tree(occupied) == [("keep.txt", 0o644, "mine\n")]


def member(name, kind=tarfile.REGTYPE, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


HOSTILE = {
    "dotdot": (member("../escaped"), "a path with '..'"),
    "inner-dotdot": (member("proj/../../escaped"), "a path with '..'"),
    "absolute": (member("/etc/cron.d/evil"), "an absolute or empty path"),
    "symlink-absolute": (member("passwd", tarfile.SYMTYPE, "/etc/passwd"), "a symlink to the absolute path"),
    "symlink-up": (member("proj/up", tarfile.SYMTYPE, "../../.."), "a symlink leading outside"),
    "hardlink-out": (member("shadow", tarfile.LNKTYPE, "../etc/shadow"), "a hard link to '../etc/shadow'"),
    "block-device": (member("disk", tarfile.BLKTYPE), "a device file or FIFO"),
    "char-device": (member("tty", tarfile.CHRTYPE), "a device file or FIFO"),
    "fifo": (member("pipe", tarfile.FIFOTYPE), "a device file or FIFO"),
    "setuid": (member("su", mode=0o4755), "a set-user-ID or set-group-ID file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_whole(case, tmp_path, occupied):
    bad, says = HOSTILE[case]
    path = tmp_path / f"{case}.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, pax_headers={OWNER_HEADER: "ada"}) as tar:
        harmless = tarfile.TarInfo("harmless.txt")
        harmless.size = 2
        tar.addfile(harmless, io.BytesIO(b"hi"))
        tar.addfile(bad)
    with pytest.raises(ArchiveError, match="refused, nothing restored") as refused:
        restore(path, occupied, "ada", force=True)
    assert says in str(refused.value)
    assert tree(occupied) == [("keep.txt", 0o644, "mine\n")]
    assert not (tmp_path / "escaped").exists()


def test_an_archive_without_an_owner_is_not_a_backup(tmp_path, occupied):
    path = tmp_path / "plain.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("empty.txt"))
    with pytest.raises(ArchiveError, match="not a workspace backup"):
        restore(path, occupied, "ada", force=True)


def test_the_command_line_says_error_and_exits_non_zero(tmp_path, occupied, capsys):
    assert main(["restore", str(tmp_path / "missing.tar.gz"), str(occupied), "--owner", "ada"]) == 2
    assert capsys.readouterr().err.startswith("ERROR: no archive missing.tar.gz")
