"""A real Docker Swarm for tests/swarm, made of Docker-in-Docker nodes on this engine.

A manager and two workers are containers of the node image (tests/swarm/node:
Debian's dockerd) on a bridge network of their own; each node's /var/lib/docker
is a volume (overlay2 cannot sit on the outer overlay). This engine itself never
joins a swarm: every `docker swarm` and `docker stack` command runs inside the
nodes. Each worker advertises two GPU ids, written into its daemon.json by
scripts/swarm-node-config, with the runc-backed test runtime `gpuhub-test-runc`
as its default runtime: the GPU seam of the one-host suite. There is no
registry: the hub and stand-in images are loaded into the nodes with
`docker save | docker load`. The hub is deployed on the manager by
scripts/cluster-up, and the workers join with the command it prints.

The nodes' engines also listen on TCP 2375, reachable only on the test bridge,
so that tests read tasks, nodes and containers through the Docker SDK.
Everything is named PREFIX-swarm*; `remove()` takes it all away.
"""

import io
import os
import re
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

from ..deployment import HUB_IMAGE, PREFIX, ROOT, STANDIN_IMAGE, TAG

NAME = f"{PREFIX}-swarm"  # nodes, their volumes, their network; also the stack and the hub's prefix
NODE_IMAGE = f"gpuhub/test-swarm-node:{TAG}"
KIND = "NVIDIA-GPU"
WORKERS = {"w1": ["GPU-w1-0", "GPU-w1-1"], "w2": ["GPU-w2-0", "GPU-w2-1"]}
NODES = ["mgr", *WORKERS]
TEST_RUNTIME = "gpuhub-test-runc=runc"
# What the manager needs to run scripts/cluster-up as an admin would (settings.yml: this suite's).
FILES = [
    "pyproject.toml",
    "docker-compose.yml",
    "docker-stack.yml",
    "scripts/cluster-up",
    "scripts/hubctl",
    "scripts/swarm-node-config",
]
CHECKOUT = "/srv/gpuhub"  # where the files land on every node
# What --privileged would grant, less what this machine's engine refuses (CAP_SYS_RESOURCE).
# By the CLI: the SDK has no systempaths (masked and read-only /proc paths).
NODE_SECURITY = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                 "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run"]  # fmt: skip


def _checkout_tar() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path in FILES:
            tar.add(ROOT / path, arcname=f"{CHECKOUT.lstrip('/')}/{path}")
        tar.add(ROOT / "jupyterhub_config.d", arcname=f"{CHECKOUT.lstrip('/')}/jupyterhub_config.d")
        tar.add(Path(__file__).with_name("settings.yml"), arcname=f"{CHECKOUT.lstrip('/')}/settings.yml")
    return data.getvalue()


def build_node_image() -> None:
    """The node image, on the local Debian base where no registry can be reached (scripts/build-images' choice)."""
    base = os.environ.get("BASE_IMAGE") or "local/debian:bookworm"
    subprocess.run(
        ["docker", "build", "-q", "-f", "tests/swarm/node/Dockerfile", "--build-arg", f"BASE_IMAGE={base}",
         "-t", NODE_IMAGE, "."],
        cwd=ROOT, check=True, capture_output=True, timeout=600,
    )  # fmt: skip


class Cluster:
    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.nodes: dict[str, docker.DockerClient] = {}
        self.join_output = ""

    # -- the nodes ----------------------------------------------------------

    def container(self, node: str):
        return self.client.containers.get(f"{NAME}-{node}")

    def sh(self, node: str, script: str, *, env: dict | None = None, check: bool = True) -> str:
        code, out = self.container(node).exec_run(["bash", "-c", script], environment=env or {})
        text = out.decode(errors="replace")
        if check and code:
            raise AssertionError(f"on {node}: {script}\n-> {code}: {text}")
        return text

    def ip(self, node: str) -> str:
        return self.container(node).attrs["NetworkSettings"]["Networks"][NAME]["IPAddress"]

    def remove(self) -> None:
        for c in self.client.containers.list(all=True, filters={"name": f"{NAME}-"}):
            if c.name.startswith(f"{NAME}-"):
                c.remove(force=True, v=True)
        for v in self.client.volumes.list(filters={"name": f"{NAME}-"}):
            if v.name.startswith(f"{NAME}-"):
                v.remove(force=True)
        for n in self.client.networks.list(names=[NAME]):
            n.remove()

    def _start_node(self, node: str) -> None:
        ids = WORKERS.get(node)
        # A worker's GPUs, written as an admin writes them on a GPU node, before its dockerd starts.
        configure = ""
        if ids:
            configure = f"{CHECKOUT}/scripts/swarm-node-config --install --runtime {TEST_RUNTIME} {' '.join(ids)} && "
        engine = "exec dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375"
        name = f"{NAME}-{node}"
        subprocess.run(
            ["docker", "create", "--name", name, "--hostname", name, "--network", NAME, "--label",
             f"gpuhub.deployment={NAME}", "-v", f"{name}-docker:/var/lib/docker", *NODE_SECURITY,
             NODE_IMAGE, "bash", "-c", configure + engine],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        container = self.container(node)
        container.put_archive("/", _checkout_tar())
        container.start()

    def _wait_engine(self, node: str, timeout: float = 60) -> docker.DockerClient:
        deadline = time.monotonic() + timeout
        while True:
            try:
                engine = docker.DockerClient(base_url=f"tcp://{self.ip(node)}:2375", timeout=120)
                engine.ping()
                return engine
            except (docker.errors.DockerException, requests.ConnectionError, KeyError) as e:
                if time.monotonic() > deadline:
                    logs = self.container(node).logs(tail=30).decode()
                    raise AssertionError(f"dockerd of {node} not up: {logs}") from e
                time.sleep(0.5)

    def _load_images(self) -> None:
        """The stand-in on every node (servers land anywhere), the hub on the manager."""
        tar = ROOT / f".build/{NAME}-standin.tar"
        tar.parent.mkdir(exist_ok=True)
        subprocess.run(["docker", "save", "-o", str(tar), STANDIN_IMAGE], check=True, timeout=300)

        def load(node: str) -> None:
            with open(tar, "rb") as f:
                subprocess.run(["docker", "exec", "-i", f"{NAME}-{node}", "docker", "load", "-q"], stdin=f,
                               check=True, capture_output=True, timeout=600)  # fmt: skip

        def load_hub() -> None:
            save = subprocess.Popen(["docker", "save", HUB_IMAGE], stdout=subprocess.PIPE)
            subprocess.run(["docker", "exec", "-i", f"{NAME}-mgr", "docker", "load", "-q"], stdin=save.stdout,
                           check=True, capture_output=True, timeout=600)  # fmt: skip
            assert save.wait(timeout=60) == 0

        try:
            with ThreadPoolExecutor(4) as pool:
                for done in [pool.submit(load, node) for node in NODES] + [pool.submit(load_hub)]:
                    done.result()
        finally:
            tar.unlink(missing_ok=True)

    def start(self) -> None:
        self.client.networks.create(NAME, driver="bridge", labels={"gpuhub.deployment": NAME})
        for node in NODES:
            self._start_node(node)
        self.nodes = {node: self._wait_engine(node) for node in NODES}
        self._load_images()
        self.join_output = self.cluster_up()
        join = re.search(r"docker swarm join --token \S+ \S+", self.join_output)
        assert join, f"no join command in scripts/cluster-up's output:\n{self.join_output}"
        for node in WORKERS:
            self.sh(node, join.group(0))

    # -- the platform on it -------------------------------------------------------

    def cluster_up(self) -> str:
        env = {"COMPOSE_PROJECT_NAME": NAME, "GPUHUB_PREFIX": NAME, "GPUHUB_NETWORK": NAME,
               "HUB_IMAGE": HUB_IMAGE, "GPUHUB_IMAGE": STANDIN_IMAGE}  # fmt: skip
        return self.sh("mgr", f"cd {CHECKOUT} && scripts/cluster-up --advertise-addr eth0", env=env)

    @property
    def manager(self) -> docker.DockerClient:
        return self.nodes["mgr"]

    @property
    def base_url(self) -> str:
        return f"http://{self.ip('mgr')}:8000"

    def hubctl(self, *args: str, check: bool = True) -> str:
        quoted = " ".join(f"'{arg}'" for arg in args)
        return self.sh("mgr", f"cd {CHECKOUT} && scripts/hubctl {quoted}", env={"COMPOSE_PROJECT_NAME": NAME},
                       check=check)  # fmt: skip

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/hub/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"hub not healthy after {timeout}s:\n{self.hub_logs()}")

    def hub_logs(self) -> str:
        return self.sh("mgr", f"docker service logs --tail 150 {NAME}_hub 2>&1", check=False)

    def admin_api(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.hubctl('token').strip().splitlines()[-1]}"
        session.base = f"{self.base_url}/hub/api"
        return session
