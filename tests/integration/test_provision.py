"""`make up` on a host where the Docker engine is missing and cannot be installed."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What make and the provisioning script need, and no dockerd, docker or apt-get.
TOOLS = ["bash", "make", "env", "id", "cat", "sed", "grep", "ls", "dirname", "printf", "seq", "sleep", "sh"]


@pytest.fixture
def world_readable_dir():
    """A temporary folder that an unprivileged user can read too."""
    path = Path(tempfile.mkdtemp(prefix="gpuhub-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def bare_path(world_readable_dir):
    bin_dir = world_readable_dir / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} missing on this host"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def make_up(path: str, os_release: Path, user: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": path, "GPUHUB_OS_RELEASE": str(os_release), "HOME": "/tmp"}
    argv = ["make", "-s", "up"]
    if user and os.geteuid() == 0:
        argv = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_not_debian_says_what_to_install(bare_path, tmp_path):
    fedora = tmp_path / "os-release"
    fedora.write_text('ID=fedora\nVERSION_ID="40"\n')
    r = make_up(bare_path, fedora)
    assert r.returncode != 0
    assert "Docker engine (dockerd) is not installed" in r.stderr
    assert "Install Docker Engine" in r.stderr


def test_not_root_says_what_to_install(bare_path, world_readable_dir):
    debian = world_readable_dir / "os-release"
    debian.write_text("ID=debian\n")
    r = make_up(bare_path, debian, user="nobody (65534)")
    assert r.returncode != 0
    assert "Install Docker Engine" in r.stderr
