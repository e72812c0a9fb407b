"""The hub database's backup before an upgrade (spawner/backup.py), on a real SQLite file."""

import sqlite3
import stat
from datetime import datetime, timedelta, timezone

import pytest

from spawner import backup

T0 = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)


@pytest.fixture
def data_dir(tmp_path):
    db = sqlite3.connect(tmp_path / backup.DB_NAME)
    db.execute("create table users (name text)")
    db.execute("insert into users values ('ada')")
    db.commit()
    db.close()
    return tmp_path


def test_a_backup_is_a_dated_copy_readable_only_by_its_owner(data_dir):
    target, removed = backup.backup(data_dir, keep=5, now=T0)
    assert target == data_dir / "backups/jupyterhub-20261130T230000Z.sqlite" and removed == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert sqlite3.connect(target).execute("select name from users").fetchall() == [("ada",)]
    assert not list(target.parent.glob("*.partial"))


def test_only_the_newest_backups_are_kept(data_dir):
    made = [backup.backup(data_dir, keep=3, now=T0 + timedelta(days=day))[0] for day in range(5)]
    (data_dir / "backups/notes.txt").write_text("an admin's own file stays")
    _, removed = backup.backup(data_dir, keep=3, now=T0 + timedelta(days=5))
    assert removed == [made[2]]
    kept = sorted(p.name for p in (data_dir / "backups").iterdir())
    assert kept == [
        "jupyterhub-20261203T230000Z.sqlite",
        "jupyterhub-20261204T230000Z.sqlite",
        "jupyterhub-20261205T230000Z.sqlite",
        "notes.txt",
    ]


def test_keep_below_one_or_a_missing_database_is_refused_and_nothing_is_written(tmp_path, capsys):
    with pytest.raises(ValueError, match="at least 1"):
        backup.backup(tmp_path, keep=0)
    assert backup.main(["--data-dir", str(tmp_path)]) == 1
    assert "no hub database at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
