"""`make up` on a host where the Docker engine is missing and cannot be installed."""

import json
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


# -- on a Debian host as root: what make up and make test install -------------------------


@pytest.fixture
def debian_root():
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("these provisioning tests run as root on Debian/Ubuntu (as `make test` does in CI)")


@pytest.fixture
def path_without_debootstrap(world_readable_dir):
    """Everything on this PATH except debootstrap, as on a fresh host."""
    bin_dir = world_readable_dir / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(":"):
        for tool in Path(folder).glob("*") if Path(folder).is_dir() else []:
            target = bin_dir / tool.name
            if tool.name != "debootstrap" and not target.exists() and os.access(tool, os.X_OK):
                target.symlink_to(tool)
    return str(bin_dir)


def provision(*args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **({"PATH": path} if path else {}), **env}
    return subprocess.run(
        [str(ROOT / "scripts/provision"), *args], env=environ, capture_output=True, text=True, timeout=600
    )


def test_make_up_installs_debootstrap_for_the_offline_base(debian_root, path_without_debootstrap):
    """No registry answers here: the images' base is bootstrapped, so `make up` needs debootstrap too."""
    r = provision(path=path_without_debootstrap)
    assert r.returncode == 0, r.stderr
    assert "installing debootstrap" in r.stdout


@pytest.mark.parametrize(
    "before, after",
    [
        (None, {}),  # no daemon.json yet
        ({"log-level": "warn", "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}}},
         {"log-level": "warn", "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}}}),
        ({"runtimes": {"nvidia": {"path": "runc"}}}, {"runtimes": {}}),  # the seam's old name is removed
    ],
    ids=["no-file", "real-nvidia-kept", "old-seam-removed"],
)  # fmt: skip
def test_test_runtime_has_a_test_name_and_never_replaces_nvidia(debian_root, tmp_path, before, after):
    daemon_json = tmp_path / "docker/daemon.json"
    if before is not None:
        daemon_json.parent.mkdir()
        daemon_json.write_text(json.dumps(before))
    r = provision("--for-tests", GPUHUB_DAEMON_JSON=str(daemon_json))
    assert r.returncode == 0, r.stderr
    want = {**after, "runtimes": {**after.get("runtimes", {}), "gpuhub-test-runc": {"path": "runc"}}}
    assert json.loads(daemon_json.read_text()) == want


def test_a_foreign_runtime_under_the_test_name_is_refused(debian_root, tmp_path):
    daemon_json = tmp_path / "daemon.json"
    foreign = {"runtimes": {"gpuhub-test-runc": {"path": "/opt/other"}}}
    daemon_json.write_text(json.dumps(foreign))
    r = provision("--for-tests", GPUHUB_DAEMON_JSON=str(daemon_json))
    assert r.returncode != 0 and "not plain runc" in r.stderr
    assert json.loads(daemon_json.read_text()) == foreign
