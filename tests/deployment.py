"""A real test deployment: the compose file, the hub image, the stand-in image,
a real Docker engine. Everything it creates carries the prefix gpuhub-test.

GPU seam: the engine has a runtime named "nvidia" that is plain runc
(scripts/provision --for-tests), and the hub is told of 4 GPUs "0".."3" by
configuration, so GPU containers really start here; see README.md beside this.
"""

import contextlib
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from spawner.labels import LABEL_DEPLOYMENT, LABEL_USER

from .hubclient import Browser

ROOT = Path(__file__).resolve().parents[1]
# Overridable so that two checkouts (or two people) can run the suite on one engine.
PREFIX = os.environ.get("GPUHUB_TEST_PREFIX", "gpuhub-test")
PORT = int(os.environ.get("GPUHUB_TEST_PORT", "18000"))
BASE_URL = f"http://127.0.0.1:{PORT}"
VERSION = next(
    line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines() if line.startswith("version")
)
# The images under test. GPUHUB_TAG (scripts/build-images reads it too) tests
# another build beside the default one without replacing its tags.
TAG = os.environ.get("GPUHUB_TAG") or VERSION
HUB_IMAGE = f"gpuhub/hub:{TAG}"
STANDIN_IMAGE = f"gpuhub/singleuser-standin:{TAG}"
SETTINGS_FILE = ROOT / "tests/integration/settings.yml"
SETTINGS = yaml.safe_load(SETTINGS_FILE.read_text())
SHARED_DATA = Path(SETTINGS["shared_data"])


class Deployment:
    """One compose project of the platform: its name is the prefix of all it makes."""

    def __init__(self, prefix: str, port: int, **settings: str):
        self.prefix, self.base_url = prefix, f"http://127.0.0.1:{port}"
        self.env = {
            "COMPOSE_PROJECT_NAME": prefix,
            "GPUHUB_PREFIX": prefix,
            "GPUHUB_NETWORK": prefix,
            "HUB_PORT": str(port),
            "HUB_SETTINGS_FILE": str(SETTINGS_FILE),
            # The configured GPUs are the inventory, also on a host with the NVIDIA runtime.
            "COMPOSE_FILE": "docker-compose.yml",
            "HUB_IMAGE": HUB_IMAGE,
            "GPUHUB_IMAGE": STANDIN_IMAGE,
            **settings,
        }

    def run(self, *argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUHUB_")}
        proc = subprocess.run(argv, cwd=ROOT, env={**env, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def hubctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("scripts/hubctl", *args, check=check)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/hub/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        logs = self.run("scripts/compose", "logs", "--tail=80", check=False).stdout
        raise AssertionError(f"hub not healthy after {timeout}s:\n{logs}")

    def up(self) -> str:
        """Start the hub; return the first admin's password."""
        self.run("scripts/compose", "up", "-d")
        self.wait_healthy()
        return re.search(r"with password (\S+)", self.hubctl("first-admin").stdout).group(1)

    def hub_container(self):
        [hub] = docker.from_env().containers.list(
            filters={"label": [f"com.docker.compose.project={self.prefix}", "com.docker.compose.service=hub"]}
        )
        return hub

    def hub_file(self, path: str) -> str:
        """A text file in the hub's container (a secret in its data volume, say), stripped."""
        code, out = self.hub_container().exec_run(["cat", path])
        assert code == 0, out.decode()
        return out.decode().strip()

    def metrics(self) -> dict:
        """/hub/metrics with the metrics service's token, parsed by prometheus_client:
        {(sample name, sorted labels): value}."""
        token = self.hub_file("/srv/jupyterhub/data/secrets/metrics_token")
        r = requests.get(f"{self.base_url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30)
        assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
        families = text_string_to_metric_families(r.text)
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}

    @contextlib.contextmanager
    def running(self, client):
        """Up from nothing for the block (a module's tests), yielding the first admin's
        password; everything removed after, data included."""
        self.down(client)  # leftovers of an interrupted run
        try:
            yield self.up()
        finally:
            self.down(client)

    def admin_api(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.hubctl('token').stdout.strip()}"
        session.base = f"{self.base_url}/hub/api"
        return session

    def down(self, client) -> None:
        """Remove everything of this deployment, data included; keep the hub's log."""
        logs = self.run("scripts/compose", "logs", "--tail=200", check=False).stdout
        (ROOT / ".build").mkdir(exist_ok=True)
        (ROOT / f".build/{self.prefix}-hub.log").write_text(logs)
        # User containers first: compose cannot remove a network or volume still in use.
        for c in client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={self.prefix}"}):
            c.remove(force=True)
        self.run("scripts/compose", "down", "--volumes", check=False)
        for v in client.volumes.list(filters={"label": f"{LABEL_DEPLOYMENT}={self.prefix}"}):
            v.remove(force=True)
        for n in client.networks.list(filters={"label": f"{LABEL_DEPLOYMENT}={self.prefix}"}):
            n.remove()


TEST = Deployment(PREFIX, PORT)
run, hubctl, wait_healthy, hub_container = TEST.run, TEST.hubctl, TEST.wait_healthy, TEST.hub_container


def wait_until(what: str, check, timeout: float = 60):
    """Poll ``check`` every second until it returns something true, and return that;
    fail naming ``what`` and its last answer."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what} not seen within {timeout}s; last: {last}")


def built_image(client, tag: str):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {tag} missing: run `make images`")


@pytest.fixture(scope="session")
def docker_client():
    """The engine, with the images under test; every suite that needs Docker fails here, loudly, without."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(f"no Docker engine ({e}): run `make test`, which provisions one")
    for image in (STANDIN_IMAGE, HUB_IMAGE):
        built_image(client, image)
    yield client
    client.close()


@pytest.fixture(scope="session")
def deployment(docker_client):
    """The hub up, with its first admin; torn down (data included) at the end."""
    SHARED_DATA.mkdir(exist_ok=True)
    (SHARED_DATA / "dataset.txt").write_text("shared rows\n")
    with TEST.running(docker_client) as password:
        yield {"admin_password": password}


@pytest.fixture(scope="session")
def admin_api(deployment):
    return TEST.admin_api()


def api(session, method: str, path: str, **kw) -> requests.Response:
    return session.request(method, session.base + path, timeout=kw.pop("timeout", 120), **kw)


def new_users(session, stem: str, n: int) -> list[str]:
    """``n`` new users (no password: driven through the admin's API)."""
    users = [f"{stem}{uuid.uuid4().hex[:6]}" for _ in range(n)]
    for user in users:
        assert api(session, "POST", f"/users/{user}").status_code == 201
    return users


def user_model(session, user: str) -> dict:
    r = api(session, "GET", f"/users/{user}")
    assert r.ok, f"GET /users/{user}: {r.status_code} {r.text[:300]}"
    return r.json()


def wait_stopped(session, user: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = user_model(session, user)
        if not model.get("server") and not model.get("pending"):
            return
        time.sleep(0.5)
    raise AssertionError(f"server of {user} still there after {timeout}s")


def wait_running(session, user: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = user_model(session, user)
        if model.get("server") and not model.get("pending"):
            return model
        time.sleep(0.5)
    raise AssertionError(f"server of {user} not running after {timeout}s: {model}")


INVITE_LINK = re.compile(r"\S*/hub/invite\?token=\S+")


def invite_link(hubctl_output: str) -> str:
    match = INVITE_LINK.search(hubctl_output)
    assert match, f"no invitation link in: {hubctl_output}"
    return match.group(0)


def create_user(name: str | None = None, *extra: str, on: Deployment = TEST) -> tuple[str, str]:
    """A user made as an admin makes one (hubctl users add NAME [extra...]) on the
    deployment ``on``, the invitation accepted with a fresh password: (name, password)."""
    name = name or f"u{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    link = invite_link(on.hubctl("users", "add", name, *extra).stdout)
    r = Browser(on.base_url).accept_invite(link, password)
    assert r.status_code == 200 and "is set" in r.text, f"invitation of {name}: {r.status_code} {r.text[:500]}"
    return name, password


@pytest.fixture
def make_user(deployment):
    """make_user() -> (name, Browser logged in): created by hubctl, invitation accepted, logged in."""

    def make(name: str | None = None) -> tuple[str, Browser]:
        name, password = create_user(name)
        browser = Browser(BASE_URL)
        r = browser.login(name, password)
        assert r.ok and "/hub/login" not in r.url, f"login of {name} failed: {r.status_code} {r.url}"
        return name, browser

    return make


HUB_DB = "/srv/jupyterhub/data/jupyterhub.sqlite"
_SQL = (
    "import json, sqlite3, sys; sql, params = json.loads(sys.argv[1]); db = sqlite3.connect(sys.argv[2]);"
    "rows = db.execute(sql, params).fetchall(); db.commit(); print(json.dumps(rows))"
)


def hub_sql(sql: str, *params) -> list:
    """Run one SQL statement on the hub's own database (sqlite, in its container)."""
    code, out = hub_container().exec_run(["python3", "-c", _SQL, json.dumps([sql, params]), HUB_DB])
    assert code == 0, out.decode()
    return json.loads(out)


def user_containers(client, user: str, prefix: str = PREFIX):
    return client.containers.list(all=True, filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}", f"{LABEL_USER}={user}"]})


def container_env(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def exec_as_user(container, script: str) -> str:
    """Run a bash script in a user container as uid 1000; it must succeed."""
    code, out = container.exec_run(["bash", "-c", script], user="1000")
    assert code == 0, out.decode()
    return out.decode()
