"""Workspace backups as an admin types them on the host (scripts/hubctl), a
deployment of its own with a 1M soft limit per workspace: the list of every
workspace; a backup refused while the server runs; back up, delete, restore:
files back with owners and modes; another user's archive, a corrupted one and
hostile ones refused with nothing changed; the soft limit in spawn progress;
--all backing up the stopped workspaces and reporting the running one."""

import io
import json
import shutil
import tarfile
import threading
import time
import uuid

import pytest
import requests

from spawner.wsarchive import OWNER_HEADER

from ..deployment import (
    PORT,
    PREFIX,
    ROOT,
    Deployment,
    api,
    exec_as_user,
    new_users,
    user_containers,
    wait_running,
    wait_stopped,
)

pytestmark = pytest.mark.integration

FILES = (
    "echo notes > ~/notes.txt && chmod 640 ~/notes.txt && mkdir -p ~/proj/.hidden && chmod 750 ~/proj"
    " && echo s3cret > ~/proj/.hidden/key && chmod 600 ~/proj/.hidden/key && ln -s notes.txt ~/link"
    " && head -c 1200000 /dev/zero > ~/big.bin"
)
# Every entry of the workspace with its mode, owner, group and type: what a restore must bring back
# (less the files each server start writes in Jupyter's runtime folder).
TREE = "cd ~ && find . -path ./.local/share/jupyter/runtime -prune -o -printf '%p %m %U %G %y %l\\n' | sort"


@pytest.fixture(scope="module")
def hub(docker_client):
    deployment = Deployment(f"{PREFIX}-backup", PORT + 340, GPUHUB_WORKSPACE_SOFT_LIMIT="1M")
    with deployment.running(docker_client):
        yield deployment


@pytest.fixture
def folder(hub):
    """A host folder for archives, named relative to the checkout (where scripts/hubctl runs)."""
    relative = f".build/{hub.prefix}-archives-{uuid.uuid4().hex[:6]}"
    (ROOT / relative).mkdir(parents=True)
    yield relative
    shutil.rmtree(ROOT / relative)


def start(hub, admin, docker_client, user):
    r = api(admin, "POST", f"/users/{user}/server", json={"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    wait_running(admin, user)
    [container] = user_containers(docker_client, user, prefix=hub.prefix)
    return container


def stop(admin, user):
    api(admin, "DELETE", f"/users/{user}/server")
    wait_stopped(admin, user)


def tree(hub, admin, docker_client, user) -> str:
    listing = exec_as_user(start(hub, admin, docker_client, user), TREE)
    stop(admin, user)
    return listing


def refused(hub, *args, says: str) -> None:
    proc = hub.hubctl("workspaces", *args, check=False)
    assert proc.returncode != 0 and says in proc.stderr, f"{args}: {proc.returncode} {proc.stdout} {proc.stderr}"


def test_back_up_delete_restore_and_every_refusal(hub, docker_client, folder):
    admin = hub.admin_api()
    user, other = new_users(admin, "bk", 2)
    exec_as_user(start(hub, admin, docker_client, user), FILES)

    [row] = [r for r in json.loads(hub.hubctl("workspaces", "--json").stdout) if r["owner"] == user]
    assert row["bytes"] >= 1_200_000 and row["server"] == "running" and row["last_use"]
    assert user in hub.hubctl("workspaces").stdout

    refused(hub, "backup", user, folder, says="server is running")
    assert list((ROOT / folder).iterdir()) == []
    stop(admin, user)
    before = tree(hub, admin, docker_client, user)
    assert "./proj/.hidden/key 600 1000 100 f" in before and "./link 777 1000 100 l notes.txt" in before

    out = hub.hubctl("workspaces", "backup", user, folder).stdout
    [archive] = (ROOT / folder).iterdir()
    assert str(archive) in out and archive.name.endswith(".tar.gz") and archive.stat().st_mode & 0o777 == 0o600
    relative = f"{folder}/{archive.name}"

    exec_as_user(start(hub, admin, docker_client, user), "rm -rf ~/notes.txt ~/proj ~/link")
    stop(admin, user)
    refused(hub, "restore", user, relative, says="not empty")
    hub.hubctl("workspaces", "restore", user, relative, "--force")
    assert tree(hub, admin, docker_client, user) == before

    # Another user's archive: only with --as.
    refused(hub, "restore", other, relative, says=f"is the workspace of '{user}'")
    hub.hubctl("workspaces", "restore", other, relative, "--as")
    assert tree(hub, admin, docker_client, other) == before

    # Corrupted and hostile archives: refused, the workspace as it was.
    data = archive.read_bytes()
    corrupted = ROOT / folder / "corrupted.tar.gz"
    corrupted.write_bytes(data[: len(data) // 2] + bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 64])
                          + data[len(data) // 2 + 64 :])  # fmt: skip
    refused(hub, "restore", user, f"{folder}/corrupted.tar.gz", "--force", says="corrupted")
    for name, member in hostile_members():
        write_archive(ROOT / folder / f"{name}.tar.gz", user, member)
        refused(hub, "restore", user, f"{folder}/{name}.tar.gz", "--force", says="refused, nothing restored")
    refused(hub, "restore", user, f"{folder}/missing.tar.gz", says="no archive missing.tar.gz")
    assert tree(hub, admin, docker_client, user) == before

    # The workspace (1.2 MB) is over the 1M soft limit: each spawn says so in its progress.
    messages = spawn_messages(hub, admin, user)
    assert any("over the soft limit of 1.0M" in m for m in messages), messages
    # and in the metrics, beside each workspace's size, for an alert rule
    assert hub.metrics()[("gpuhub_workspace_soft_limit_bytes", ())] == 1024 * 1024

    # --all while one server runs: the stopped workspaces are backed up, the running one is reported.
    (ROOT / folder / "all").mkdir()
    every = hub.hubctl("workspaces", "backup", "--all", f"{folder}/all", check=False)
    assert every.returncode != 0 and f"ERROR: {user}'s server is running" in every.stderr, every.stderr
    assert f"backed up {other} to " in every.stderr
    assert [p.name.split("-2")[0] for p in (ROOT / folder / "all").iterdir()] == [other]
    stop(admin, user)


def hostile_members():
    def member(name, kind=tarfile.REGTYPE, link=""):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        return info

    yield "dotdot", member("../escaped.txt")
    yield "absolute", member("/etc/cron.d/evil")
    yield "symlink-out", member("passwd", tarfile.SYMTYPE, "/etc/passwd")
    yield "symlink-up", member("up", tarfile.SYMTYPE, "proj/../../..")
    yield "hardlink-out", member("shadow", tarfile.LNKTYPE, "../../etc/shadow")
    yield "device", member("disk", tarfile.BLKTYPE)


def write_archive(path, owner, member):
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, pax_headers={OWNER_HEADER: owner}) as tar:
        ok = tarfile.TarInfo("harmless.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"hi"))
        tar.addfile(member, io.BytesIO(b""))


def spawn_messages(hub, admin, user) -> list[str]:
    """The progress messages of one spawn, read from the hub's event stream while it runs."""
    spawn = threading.Thread(target=api, args=(admin, "POST", f"/users/{user}/server"), kwargs={"json": {}})
    spawn.start()
    url = f"{admin.base}/users/{user}/server/progress"
    deadline, messages = time.monotonic() + 60, []
    while time.monotonic() < deadline and not messages:
        with requests.get(url, headers=admin.headers, stream=True, timeout=60) as r:
            if r.status_code != 200:
                time.sleep(0.2)  # not pending yet
                continue
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    messages.append(event.get("message", ""))
                    if event.get("ready") or event.get("failed"):
                        break
    spawn.join(timeout=120)
    wait_running(admin, user)
    return messages
