"""The single-host platform end to end: real hub, real Docker, real containers."""

import uuid
from urllib.parse import quote

import pytest

from spawner.labels import LABEL_USER
from spawner.names import safe_slug, workspace_volume

from ..deployment import (
    BASE_URL,
    PREFIX,
    api,
    container_env,
    exec_as_user,
    hubctl,
    invite_link,
    user_containers,
    wait_healthy,
    wait_running,
    wait_stopped,
)
from ..hubclient import Browser

pytestmark = pytest.mark.integration


def spawn_cpu(browser: Browser, user: str) -> None:
    r = browser.spawn({"profile": "cpu"})
    assert r.ok, r.text[:500]
    browser.wait_server(user)


def test_workspace_survives_stop_and_start(make_user, docker_client, admin_api):
    user, browser = make_user()
    assert 'name="profile"' in browser.spawn_form()  # the options form is shown
    spawn_cpu(browser, user)
    assert browser.contents_put(user, "notes.txt", "kept").status_code in (200, 201)
    [container] = user_containers(docker_client, user)
    exec_as_user(container, "mkdir -p ~/.secret && echo hidden > ~/.secret/key")

    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user)
    assert user_containers(docker_client, user) == []  # compute is disposable

    spawn_cpu(browser, user)
    assert browser.contents_get(user, "notes.txt").json()["content"] == "kept"
    [container] = user_containers(docker_client, user)
    assert exec_as_user(container, "cat ~/.secret/key").strip() == "hidden"


def test_container_is_locked_down(make_user, docker_client):
    user, browser = make_user()
    spawn_cpu(browser, user)
    [container] = user_containers(docker_client, user)
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "1000:100"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ShmSize"] == 1024**3  # the cpu profile's 1G, not Docker's 64M
    assert host["Memory"] == 8 * 1024**3 and host["CpuQuota"] == 2 * host["CpuPeriod"]
    assert not any("docker.sock" in m["Source"] for m in container.attrs["Mounts"])
    uid, shm = exec_as_user(container, "id -u; df -m /dev/shm | tail -1 | awk '{print $2}'").split()
    assert uid == "1000" and int(shm) == 1024
    env = container_env(container)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # CPU profile: no GPU at all
    assert exec_as_user(container, "cat /data/dataset.txt") == "shared rows\n"
    code, out = container.exec_run(["touch", "/data/mine"], user="1000")
    assert code != 0 and b"Read-only file system" in out


def test_hub_secrets_are_private(deployment, docker_client):
    hub = docker_client.containers.list(filters={"label": f"com.docker.compose.project={PREFIX}"})[0]
    code, out = hub.exec_run(["sh", "-c", "stat -c '%a %n' /srv/jupyterhub/data/secrets/*"])
    modes = dict(line.split()[::-1] for line in out.decode().splitlines())
    assert code == 0 and {m.rsplit("/", 1)[-1] for m in modes} >= {"cookie_secret", "proxy_token", "hubctl_token"}
    assert set(modes.values()) == {"600"}, modes


def test_users_are_isolated(make_user, docker_client):
    alice, a = make_user()
    bob, b = make_user()
    spawn_cpu(a, alice)
    spawn_cpu(b, bob)
    assert a.contents_put(alice, "alice-only.txt", "private").status_code in (200, 201)
    names = [item["name"] for item in b.contents_get(bob, "").json()["content"]]
    assert "alice-only.txt" not in names
    [ca], [cb] = user_containers(docker_client, alice), user_containers(docker_client, bob)
    volumes = [{m["Name"] for m in c.attrs["Mounts"] if m["Type"] == "volume"} for c in (ca, cb)]
    assert volumes[0] and volumes[1] and volumes[0].isdisjoint(volumes[1])
    r = b.server_get(alice, "/api/contents/alice-only.txt", allow_redirects=True)
    assert r.status_code in (403, 404) or "/hub/" in r.url
    assert "private" not in r.text


def test_hub_restart_leaves_servers_running(make_user, docker_client, admin_api):
    people = [make_user() for _ in range(2)]
    for user, browser in people:
        spawn_cpu(browser, user)
    before = {user: user_containers(docker_client, user)[0].id for user, _ in people}

    hub = docker_client.containers.list(filters={"label": f"com.docker.compose.project={PREFIX}"})[0]
    hub.restart(timeout=30)
    wait_healthy()

    for user, browser in people:
        assert [c.id for c in user_containers(docker_client, user)] == [before[user]]
        browser.wait_server(user, timeout=60)  # the proxy routes again
    user, _ = people[0]
    assert api(admin_api, "DELETE", f"/users/{user}/server").status_code in (202, 204)
    wait_stopped(admin_api, user)
    assert user_containers(docker_client, user) == []


@pytest.mark.parametrize("name", ["zoë.o'neil", "x" * 120, "Ada", "a b", "x\tautofocus", "-a", "{servername}"])
def test_odd_usernames_are_refused_with_the_rule_and_create_nothing(name, admin_api, docker_client, deployment):
    r = api(admin_api, "POST", f"/users/{quote(name, safe='')}")
    assert r.status_code == 400, r.text
    assert "lower-case letters, digits" in r.json()["message"] or "use 'ada'" in r.json()["message"]
    assert api(admin_api, "GET", f"/users/{quote(name, safe='')}").status_code == 404
    assert user_containers(docker_client, name) == []


# "a.b" escapes to "a-2eb", the next name verbatim: a naive escape makes them one container.
EDGE_NAMES = ["a.b", "a-2eb", "0-x_y", "m" * 32]


def test_edge_valid_usernames_get_the_derived_names_and_never_collide(admin_api, docker_client, deployment):
    seen = {}
    for name in EDGE_NAMES:
        assert api(admin_api, "POST", f"/users/{name}").status_code in (201, 409)
        r = api(admin_api, "POST", f"/users/{name}/server", json={"profile": "cpu"})
        assert r.status_code in (201, 202), r.text
        wait_running(admin_api, name)
        [container] = user_containers(docker_client, name)
        volumes = [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"]
        seen[name] = (container.name, volumes)
        api(admin_api, "DELETE", f"/users/{name}/server")
        wait_stopped(admin_api, name)
    derived = {name: (f"{PREFIX}-{safe_slug(name)}", [workspace_volume(PREFIX, name)]) for name in EDGE_NAMES}
    assert seen == derived
    # Stopped containers are removed, so Docker would let two users reuse one
    # name in turn; volumes stay, so two users would share one workspace.
    containers = [container for container, _ in seen.values()]
    volumes = [volume for _, [volume] in seen.values()]
    assert len(set(containers)) == len(set(volumes)) == len(EDGE_NAMES), seen
    assert all(len(container) <= len(PREFIX) + 41 for container in containers), containers


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "cpu", "image": "evil/miner"}, "image"),
        ({"profile": "no-such-profile"}, "no-such-profile"),
        ({"profile": "cpu", "surprise": 1}, "surprise"),
    ],
)
def test_bad_options_are_refused_and_create_nothing(options, message, admin_api, docker_client, deployment):
    user = f"bad{uuid.uuid4().hex[:6]}"
    api(admin_api, "POST", f"/users/{user}")
    r = api(admin_api, "POST", f"/users/{user}/server", json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert user_containers(docker_client, user) == []
    assert docker_client.volumes.list(filters={"label": f"{LABEL_USER}={user}"}) == []


def test_admin_cli_users_and_servers(deployment):
    user = f"cli{uuid.uuid4().hex[:6]}"
    link = invite_link(hubctl("users", "add", user).stdout)
    assert user in hubctl("users", "list").stdout
    browser, password = Browser(BASE_URL), uuid.uuid4().hex
    assert browser.accept_invite(link, password).status_code == 200
    assert "/hub/login" not in browser.login(user, password).url
    hubctl("servers", "start", user, "--profile", "cpu")
    assert user in hubctl("servers", "list").stdout
    hubctl("servers", "stop", user)
    assert "removed" in hubctl("users", "remove", user).stdout
    assert user not in hubctl("users", "list").stdout
    assert "/hub/login" in Browser(BASE_URL).login(user, password).url
    bad = hubctl("users", "add", "bad/name", check=False)
    assert bad.returncode != 0 and "'bad/name' is not a valid username" in bad.stderr
    assert "lower-case letters, digits" in bad.stderr


def test_unknown_user_cannot_log_in(deployment):
    r = Browser(BASE_URL).login("nobody-here", "wrong-password-123")
    assert r.status_code == 403 and "Invalid username or password" in r.text


def test_self_signup_waits_for_approval(deployment):
    name, password = f"self{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    browser = Browser(BASE_URL)
    assert "an admin must approve" in browser.signup(name, password)
    r = browser.login(name, password)
    assert r.status_code == 403 and "not approved by an admin yet" in r.text
