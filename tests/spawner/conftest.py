"""The middle layer: the real GPUDockerSpawner under JupyterHub's in-process MockHub,
against the real Docker engine and the stand-in single-user image.

As dockerspawner's own tests/conftest.py does: the hub runs in this process and
listens on the Docker bridge's gateway, so user containers reach it; every
container, volume and image tag these tests make is named PREFIX-… and removed
by the session fixture (before, for leftovers, and after); a failed test prints
the logs and `docker inspect` of each of them. A host without Docker fails here,
loudly: `make test` provisions the engine and builds the stand-in image.

The hub has no configurable-http-proxy (test hosts do not have one): its proxy
is a route table in memory, and tests talk to the hub API and to user servers
directly.
"""

import asyncio
import copy
import ipaddress
import json
import os
import time
import uuid
from urllib.parse import quote

import pytest
import pytest_asyncio
from jupyterhub.proxy import Proxy
from jupyterhub.tests.mocking import MockHub
from jupyterhub.tests.utils import add_user, api_request
from jupyterhub.utils import maybe_future
from traitlets import Bool, Dict
from traitlets.config import Config

from spawner import GPUDockerSpawner
from spawner.labels import LABEL_DEPLOYMENT, LABEL_USER

from ..deployment import PREFIX as DEPLOYMENT_PREFIX
from ..deployment import STANDIN_IMAGE, TAG

# GPUHUB_TEST_PREFIX moves this too, so that two checkouts can share an engine.
PREFIX = f"{DEPLOYMENT_PREFIX}-spawner"
DEFAULT_IMAGE = STANDIN_IMAGE
# A second tag of the stand-in: an image a profile may choose when allowed_images lists it.
ALT_IMAGE = f"{PREFIX}-alt:{TAG}"
# Never created: only a profile choice outside allowed_images names it.
OUTSIDE_IMAGE = f"{PREFIX}-outside:{TAG}"
# Where user containers reach the hub; default: the gateway of Docker's bridge network.
HUB_CONNECT_IP = os.environ.get("GPUHUB_TEST_HUB_CONNECT_IP", "")
SPAWN_TIMEOUT = 120  # seconds, for a spawn or a stop to finish


def _is_ours(name: str, labels: dict | None) -> bool:
    """Named PREFIX-… and not labelled as another deployment's."""
    return name.startswith(f"{PREFIX}-") and (labels or {}).get(LABEL_DEPLOYMENT, PREFIX) == PREFIX


def our_containers(engine):
    return [c for c in engine.containers.list(all=True, filters={"name": PREFIX}) if _is_ours(c.name, c.labels)]


def our_volumes(engine):
    found = engine.volumes.list(filters={"name": PREFIX})
    return [v for v in found if _is_ours(v.name, v.attrs.get("Labels"))]


def _remove_ours(engine) -> None:
    for container in our_containers(engine):
        container.remove(force=True)
    for volume in our_volumes(engine):
        volume.remove(force=True)


@pytest.fixture(scope="session")
def engine(docker_client):
    """The Docker engine, with the stand-in image and its ALT_IMAGE tag; cleaned before and after."""
    _remove_ours(docker_client)
    docker_client.images.get(DEFAULT_IMAGE).tag(ALT_IMAGE)
    try:
        yield docker_client
    finally:
        _remove_ours(docker_client)
        docker_client.images.remove(ALT_IMAGE, noprune=True)  # the tag only; the stand-in stays


def _bridge_gateway(engine) -> str:
    ipam = engine.networks.get("bridge").attrs["IPAM"]["Config"][0]
    # Docker omits the gateway when it is the subnet's first address.
    return ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


class RouteTableProxy(Proxy):
    """A proxy that only keeps its route table: enough for the hub to register servers."""

    should_start = Bool(False)
    table = Dict()

    async def add_route(self, routespec, target, data):
        self.table[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self.table.pop(routespec, None)

    async def get_all_routes(self):
        return copy.deepcopy(self.table)


def _base_config() -> Config:
    """What every test starts from: ordinary DockerSpawner settings, nothing else."""
    config = Config()
    config.GPUDockerSpawner.prefix = PREFIX
    config.GPUDockerSpawner.image = DEFAULT_IMAGE
    config.GPUDockerSpawner.pull_policy = "never"  # no registry here; a missing image fails at once
    config.GPUDockerSpawner.start_timeout = SPAWN_TIMEOUT
    config.GPUDockerSpawner.http_timeout = SPAWN_TIMEOUT
    return config


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hub(engine):
    """A JupyterHub (MockHub) with GPUDockerSpawner, in this process; an admin named "admin"."""
    connect_ip = HUB_CONNECT_IP or _bridge_gateway(engine)
    app = MockHub.instance(
        config=_base_config(),
        spawner_class=GPUDockerSpawner,
        proxy_class=RouteTableProxy,
        hub_ip=connect_ip,
        hub_connect_ip=connect_ip,
        cookie_secret=os.urandom(32),  # else JupyterHub writes jupyterhub_cookie_secret into the CWD
    )
    await app.initialize([])
    assert app.tornado_settings["config"] is app.config, "spawner_config would not reach new spawners"
    await app.start()
    add_user(app.db, app, name="admin", admin=True)
    try:
        yield app
    finally:
        app.log.handlers = []
        MockHub.clear_instance()
        await maybe_future(app.stop())  # stops every user server (a coroutine from JupyterHub 6)


@pytest.fixture
def spawner_config(hub):
    """This test's GPUDockerSpawner config section: spawners made after a change see it."""
    saved = copy.deepcopy(hub.config.GPUDockerSpawner)
    yield hub.config.GPUDockerSpawner
    hub.config.GPUDockerSpawner = saved


@pytest_asyncio.fixture(loop_scope="session")
async def make_user(hub, engine, spawner_config, request):
    """make_user(name=None) -> a new hub user; their servers are stopped after the test,
    and on failure the logs and inspect of every PREFIX container are printed first."""
    made = []

    def make(name: str | None = None):
        name = name or f"u{uuid.uuid4().hex[:8]}"
        made.append(add_user(hub.db, hub, name=name))
        return made[-1]

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        dump_containers(engine)
    for user in made:
        for name, spawner in list(user.spawners.items()):
            if spawner.active:
                await asyncio.wait_for(user.stop(name), SPAWN_TIMEOUT)


def dump_containers(engine) -> None:
    for container in our_containers(engine):
        logs = container.logs(tail=200).decode(errors="replace")
        print(f"===== container {container.name} ({container.status}): logs =====\n{logs}")
        print(f"===== container {container.name}: inspect =====")
        print(json.dumps(engine.api.inspect_container(container.id), indent=2, sort_keys=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # read by make_user's teardown
    return report


async def hub_api(hub, method: str, *path: str, **kwargs):
    """A hub API request as the admin, straight to the hub (there is no proxy process)."""
    return await api_request(hub, *path, method=method, bypass_proxy=True, **kwargs)


def _path(user) -> tuple[str, ...]:
    return ("users", quote(user.name, safe=""), "server")


async def _wait_not_pending(hub, user) -> dict:
    deadline = time.monotonic() + SPAWN_TIMEOUT
    while time.monotonic() < deadline:
        r = await hub_api(hub, "get", "users", quote(user.name, safe=""))
        r.raise_for_status()
        server = r.json()["servers"].get("")
        if not server or not server["pending"]:
            return server or {}
        await asyncio.sleep(0.5)
    raise AssertionError(f"server of {user.name!r} still pending after {SPAWN_TIMEOUT}s")


async def spawn(hub, user, body=None):
    """POST the user's default server (``body``: JSON-encoded when not bytes/str); return
    the response, after waiting for a spawn it accepted to finish."""
    data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
    r = await hub_api(hub, "post", *_path(user), data=data)
    if r.status_code == 202:
        await _wait_not_pending(hub, user)
    return r


async def spawn_ok(hub, user, body=None) -> dict:
    """Spawn and require a running server; return the container's inspect data."""
    r = await spawn(hub, user, body)
    assert r.status_code in (201, 202), f"spawn of {user.name!r} answered {r.status_code}: {r.text}"
    spawner = user.spawner
    assert spawner.ready, f"server of {user.name!r} is not running after the spawn"
    return spawner.client.inspect_container(spawner.object_id)


async def stop(hub, user) -> None:
    r = await hub_api(hub, "delete", *_path(user))
    assert r.status_code in (202, 204), f"stop of {user.name!r} answered {r.status_code}: {r.text}"
    if r.status_code == 202:
        server = await _wait_not_pending(hub, user)
        assert not server, f"server of {user.name!r} still there after stop: {server}"


def user_objects(engine, user) -> tuple[list, list]:
    """(containers, volumes) of this deployment labelled with the user's name or named for them."""
    label = [f"{LABEL_DEPLOYMENT}={PREFIX}", f"{LABEL_USER}={user.name}"]
    containers = {c.id: c for c in engine.containers.list(all=True, filters={"label": label})}
    object_name = user.spawner.object_name
    containers.update({c.id: c for c in our_containers(engine) if c.name == object_name})
    volumes = engine.volumes.list(filters={"label": label})
    return list(containers.values()), volumes
