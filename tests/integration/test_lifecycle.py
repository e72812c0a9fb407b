"""`make down` and `make upgrade` with user servers running, as the README's
"Stop, start, upgrade" section says: PREFIX-lifecycle on PORT+600, under GPUHUB_TAG.

Each test starts two servers, one holding a GPU lease through the test runtime
seam, and writes files into both workspaces: a plain file, a hidden one and a
personal env's folder (the stand-in has no conda: the layout is files, checked
as files).
"""

import io
import re

import pytest
import requests

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS

from ..deployment import (
    PORT,
    PREFIX,
    ROOT,
    STANDIN_IMAGE,
    TAG,
    Deployment,
    api,
    exec_as_user,
    new_users,
    user_containers,
    wait_running,
    wait_stopped,
)

pytestmark = pytest.mark.integration

LIFECYCLE = f"{PREFIX}-lifecycle"
SETTINGS = ROOT / "settings.yml"
# What a user leaves in a workspace: checked after every stop, start and upgrade.
WRITE_FILES = (
    "echo notes > ~/notes.txt && echo secret > ~/.hidden-config && "
    "mkdir -p ~/conda-envs/myexp/conda-meta && echo '==> create' > ~/conda-envs/myexp/conda-meta/history"
)
READ_FILES = "cat ~/notes.txt ~/.hidden-config ~/conda-envs/myexp/conda-meta/history"
FILES = "notes\nsecret\n==> create\n"


def deployment(**settings: str) -> Deployment:
    return Deployment(LIFECYCLE, PORT + 600, GPUHUB_TAG=TAG, **settings)


@pytest.fixture
def hub(docker_client):
    """The lifecycle deployment up (as compose starts it); removed, data included, after.
    A settings.yml that `make up` creates in the checkout is removed again."""
    had_settings = SETTINGS.exists()
    up = deployment()
    up.down(docker_client)
    up.up()
    try:
        yield up
    finally:
        up.down(docker_client)
        if not had_settings:
            SETTINGS.unlink(missing_ok=True)


def make(hub: Deployment, *target: str) -> str:
    r = hub.run("make", "-s", *target, check=False, timeout=900)
    assert r.returncode == 0, f"make {' '.join(target)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr  # what the admin reads


def ours(client, hub: Deployment, kind: str) -> list:
    return getattr(client, kind).list(**({"all": True} if kind == "containers" else {}),
                                      filters={"label": f"{LABEL_DEPLOYMENT}={hub.prefix}"})  # fmt: skip


def start_two_servers(hub: Deployment, client) -> tuple[requests.Session, list[str], dict]:
    """Two users' servers running, the first on 1 GPU, files in both workspaces: (admin, users, containers)."""
    admin = hub.admin_api()
    users = new_users(admin, "lc", 2)
    for user, profile in zip(users, ("gpu-1", "cpu"), strict=False):
        r = api(admin, "POST", f"/users/{user}/server", json={"profile": profile})
        assert r.status_code in (201, 202), r.text
        wait_running(admin, user)
    containers = {user: user_containers(client, user, hub.prefix)[0] for user in users}
    assert containers[users[0]].labels.get(LABEL_GPUS), "the first server holds no GPU lease"
    for container in containers.values():
        exec_as_user(container, WRITE_FILES)
    return admin, users, containers


def test_make_down_stops_running_servers_through_the_hub_and_make_up_lets_users_start_again(hub, docker_client):
    admin, users, _ = start_two_servers(hub, docker_client)

    down = make(hub, "down")
    for user in users:
        assert f"stopped the server of {user} " in down, down
    assert "removed container" not in down  # the hub stopped them all itself
    assert not ours(docker_client, hub, "containers") and not ours(docker_client, hub, "networks")
    assert not docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={hub.prefix}"})
    assert not docker_client.networks.list(names=[hub.prefix])
    volumes = {v.name for v in ours(docker_client, hub, "volumes")}
    assert {f"{hub.prefix}-home-{user}" for user in users} <= volumes
    assert docker_client.volumes.get(f"{hub.prefix}-hub-data")

    assert f"JupyterHub is up: {hub.base_url}/" in make(hub, "up")
    admin = hub.admin_api()
    for user in users:  # nothing shown running that is not
        model = api(admin, "GET", f"/users/{user}").json()
        assert not model["server"] and not model["pending"] and not model["servers"], model
    for user, profile in zip(users, ("gpu-1", "cpu"), strict=False):  # and they start again at once, the GPU too
        r = api(admin, "POST", f"/users/{user}/server", json={"profile": profile})
        assert r.status_code in (201, 202), r.text
        wait_running(admin, user)
        [container] = user_containers(docker_client, user, hub.prefix)
        assert exec_as_user(container, READ_FILES) == FILES


def test_make_down_without_a_hub_removes_servers_by_label_and_the_next_hub_shows_them_stopped(hub, docker_client):
    admin, users, containers = start_two_servers(hub, docker_client)
    hub.run("scripts/compose", "stop", "hub")  # a hub that is down cannot stop anything

    down = make(hub, "down")
    assert "no running hub" in down
    for container in containers.values():
        assert f"removed container {container.name} " in down
    assert not ours(docker_client, hub, "containers") and not ours(docker_client, hub, "networks")

    # An upgrade with no hub running backs up through a one-off container on the data volume.
    assert "hub database backed up to /srv/jupyterhub/data/backups/" in make(hub, "upgrade")
    admin = hub.admin_api()
    for user in users:  # the hub saw the containers gone and recorded the servers stopped
        wait_stopped(admin, user)


@pytest.fixture
def next_image(docker_client):
    """A new single-user image: the stand-in plus a label and a variable that tell it apart."""
    tag = f"{LIFECYCLE}-singleuser:next"
    dockerfile = f"FROM {STANDIN_IMAGE}\nLABEL gpuhub.test-upgrade=next\nENV GPUHUB_UPGRADED=next\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, noprune=False)


# next_image first: set up before the hub, removed after the hub and its containers.
def test_make_upgrade_keeps_servers_running_and_the_next_start_uses_the_new_image(next_image, hub, docker_client):
    admin, users, containers = start_two_servers(hub, docker_client)
    [old_hub] = docker_client.containers.list(filters={"label": f"com.docker.compose.project={hub.prefix}"})

    upgraded = deployment(GPUHUB_IMAGE=next_image)
    out = make(upgraded, "upgrade")
    backed_up = re.search(r"hub database backed up to (/srv/jupyterhub/data/backups/jupyterhub-\S+\.sqlite)", out)
    assert backed_up and out.index("backed up") < out.index("JupyterHub is up"), out
    assert "upgraded; 2 user server(s) kept running" in out
    [new_hub] = docker_client.containers.list(filters={"label": f"com.docker.compose.project={hub.prefix}"})
    assert new_hub.id != old_hub.id  # the hub was recreated...
    code, mode = new_hub.exec_run(["stat", "-c", "%a", backed_up.group(1)])
    assert code == 0 and mode.decode().strip() == "600"
    token = {"Authorization": f"token {upgraded.hubctl('token').stdout.strip()}"}
    for user, container in containers.items():  # ...and the servers kept running, reachable through it
        container.reload()
        assert container.status == "running" and container.attrs["Config"]["Image"] == STANDIN_IMAGE
        assert api(admin, "GET", f"/users/{user}").json()["server"]
        r = requests.get(f"{hub.base_url}/user/{user}/api/status", headers=token, timeout=30)
        assert r.status_code == 200 and "started" in r.json(), r.text

    admin = upgraded.admin_api()
    for user, profile in zip(users, ("gpu-1", "cpu"), strict=False):
        api(admin, "DELETE", f"/users/{user}/server")
        wait_stopped(admin, user)
        r = api(admin, "POST", f"/users/{user}/server", json={"profile": profile})
        assert r.status_code in (201, 202), r.text
        wait_running(admin, user)
        [container] = user_containers(docker_client, user, hub.prefix)
        assert container.attrs["Config"]["Image"] == next_image
        assert "GPUHUB_UPGRADED=next" in container.attrs["Config"]["Env"]
        assert exec_as_user(container, READ_FILES) == FILES
