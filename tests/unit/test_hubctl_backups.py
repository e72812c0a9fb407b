"""hubctl workspaces backup/restore without Docker: host paths as the admin typed
them, archive names, the command line's forms, and the size units of the listing."""

import re

import pytest

from spawner.hubctl.__main__ import parser
from spawner.hubctl.backups import HOST_CWD_ENV, BackupError, archive_name, host_path
from spawner.names import safe_slug
from spawner.sizes import human, size_bytes

from .test_gpu_idle import T0


def test_a_relative_folder_is_the_admins_own():
    assert host_path("backups", {HOST_CWD_ENV: "/home/admin"}) == "/home/admin/backups"
    assert host_path("../b/./x.tar.gz", {HOST_CWD_ENV: "/home/admin"}) == "/home/b/x.tar.gz"
    assert host_path("/srv/backups/", {}) == "/srv/backups"
    with pytest.raises(BackupError, match="give an absolute path"):
        host_path("backups", {})


def test_archive_names_are_safe_for_any_username():
    for user in ("Dana Smith/../x", "../../etc", "ada"):
        assert archive_name(user, T0) == f"{safe_slug(user)}-20261130T120000Z.tar.gz"
        assert re.fullmatch(r"[a-z0-9-]+-20261130T120000Z\.tar\.gz", archive_name(user, T0))


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["workspaces", "restore", "ada", "ada.tar.gz", "--force"], ("ada", "ada.tar.gz", True, False)),
        (["workspaces", "restore", "bob", "ada.tar.gz", "--as"], ("bob", "ada.tar.gz", False, True)),
        (["workspaces", "restore", "gpuhub-archive-ada-1"], ("gpuhub-archive-ada-1", None, False, False)),
    ],
)
def test_restore_takes_a_name_and_a_file_or_an_archive(argv, expected):
    args = parser().parse_args(argv)
    assert (args.archive, args.file, args.force, args.as_user) == expected


def test_backup_takes_a_user_or_all_and_a_folder():
    one = parser().parse_args(["workspaces", "backup", "ada", "/srv/b"])
    every = parser().parse_args(["workspaces", "backup", "--all", "/srv/b", "--live"])
    assert (one.user, one.dir, one.all) == ("ada", "/srv/b", False)
    assert (every.user, every.dir, every.all, every.live) == (None, "/srv/b", True, True)
    assert parser().parse_args(["workspaces"]).func.__name__ == "cmd_overview"


@pytest.mark.parametrize("text, n", [("1M", 1024**2), ("1.5G", int(1.5 * 1024**3)), ("512", 512), ("2k", 2048)])
def test_size_bytes_reads_the_one_size_rule(text, n):
    assert size_bytes(text) == n


@pytest.mark.parametrize("n, text", [(512, "512"), (1536, "1.5K"), (1_200_000, "1.1M"), (50 * 1024**3, "50G")])
def test_human_sizes(n, text):
    assert human(n) == text
