"""GPU leases against the real engine and hub (4 configured GPUs, runtime seam)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS, LABEL_USER

from ..deployment import (
    PREFIX,
    SETTINGS,
    api,
    container_env,
    hubctl,
    new_users,
    user_containers,
    wait_healthy,
    wait_running,
    wait_stopped,
)

pytestmark = pytest.mark.integration
INVENTORY = {"0", "1", "2", "3"}


def gpus_of(container) -> set[str]:
    env = container_env(container)
    labels = container.attrs["Config"]["Labels"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == labels[LABEL_GPUS]
    assert container.attrs["HostConfig"]["Runtime"] == SETTINGS["gpu_runtime"]
    return set(labels[LABEL_GPUS].split(","))


def start(admin_api, user: str, profile: str = "gpu-1"):
    return api(admin_api, "POST", f"/users/{user}/server", json={"profile": profile})


def held(docker_client) -> dict[str, set[str]]:
    """user -> GPUs, from every leasing container of the test deployment."""
    found = docker_client.containers.list(all=True, filters={"label": [f"{LABEL_DEPLOYMENT}={PREFIX}", LABEL_GPUS]})
    return {c.labels[LABEL_USER]: gpus_of(c) for c in found}


def assert_no_double_booking(docker_client) -> None:
    leases = held(docker_client)
    devices = [gpu for gpus in leases.values() for gpu in gpus]
    assert len(devices) == len(set(devices)), leases
    assert set(devices) <= INVENTORY


@pytest.fixture
def clean_pool(admin_api, docker_client):
    """Every test starts and ends with no GPU leased."""

    def stop_all():
        for user in held(docker_client):
            api(admin_api, "DELETE", f"/users/{user}/server")
            wait_stopped(admin_api, user)

    stop_all()
    yield
    stop_all()


def test_ten_concurrent_spawns_on_four_gpus(admin_api, docker_client, clean_pool):
    users = new_users(admin_api, "gpu", 10)
    with ThreadPoolExecutor(10) as pool:
        answers = dict(zip(users, pool.map(lambda u: start(admin_api, u), users), strict=False))

    refused = {u: r for u, r in answers.items() if r.status_code >= 400}
    for user in set(users) - set(refused):
        wait_running(admin_api, user)
    assert len(refused) == 6, {u: (r.status_code, r.text) for u, r in answers.items()}
    for user, r in refused.items():
        message = r.json()["message"]
        assert "No free GPU" in message and "4 of the 4 GPUs" in message, message
        assert user_containers(docker_client, user) == []  # nothing left behind
    leases = held(docker_client)
    assert set(leases) == set(users) - set(refused)
    assert set().union(*leases.values()) == INVENTORY
    assert_no_double_booking(docker_client)

    # Stop two: the next two get exactly the freed devices.
    leavers = sorted(leases)[:2]
    freed = leases[leavers[0]] | leases[leavers[1]]
    for user in leavers:
        api(admin_api, "DELETE", f"/users/{user}/server")
        wait_stopped(admin_api, user)
    newcomers = sorted(refused)[:2]
    for user in newcomers:
        assert start(admin_api, user).status_code in (201, 202)
        wait_running(admin_api, user)
    leases = held(docker_client)
    assert leases[newcomers[0]] | leases[newcomers[1]] == freed
    assert_no_double_booking(docker_client)


def test_hub_restart_and_manual_removal_keep_the_pool_right(admin_api, docker_client, clean_pool):
    users = new_users(admin_api, "gpu", 5)
    for user in users[:4]:
        assert start(admin_api, user).status_code in (201, 202)
        wait_running(admin_api, user)

    hub = docker_client.containers.list(filters={"label": f"com.docker.compose.project={PREFIX}"})[0]
    hub.restart(timeout=30)
    wait_healthy()
    r = start(admin_api, users[4])
    assert r.status_code == 503 and "4 of the 4 GPUs" in r.json()["message"]
    assert_no_double_booking(docker_client)

    # An admin removes a container by hand: its GPU returns to the pool.
    [gone] = user_containers(docker_client, users[0])
    freed = gpus_of(gone)
    gone.remove(force=True)
    assert start(admin_api, users[4]).status_code in (201, 202)
    wait_running(admin_api, users[4])
    assert held(docker_client)[users[4]] == freed
    assert_no_double_booking(docker_client)


def start_reading_progress(admin_api, user: str, profile: str = "gpu-1", timeout: float = 120):
    """Start ``user``'s server and read its progress stream, as the spawn page
    does (GET /hub/api/users/NAME/server/progress, an event stream): the POST's
    answer and every event, up to the final ready or failed one.

    The reader asks before the POST is sent: the hub answers 404 until it has
    made the server's spawner, 400 until the spawn is pending, and from then on
    replays every event of this spawn."""
    url = f"{admin_api.base}/users/{user}/server/progress"
    reader = requests.Session()
    reader.headers.update(admin_api.headers)
    events: list[dict] = []

    def read() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with reader.get(url, stream=True, timeout=timeout) as r:
                if r.status_code in (400, 404):  # 404: the hub has not made the server's spawner yet; 400: not pending
                    time.sleep(0.02)
                    continue
                assert r.status_code == 200, r.text
                assert r.headers["Content-Type"].startswith("text/event-stream")
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:"):
                        events.append(json.loads(line[len("data:") :]))
                        if events[-1].get("ready") or events[-1].get("failed"):
                            return
                raise AssertionError(f"progress stream ended without ready/failed: {events}")
        raise AssertionError(f"the spawn of {user} never showed up as pending in {timeout}s")

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read)
        answer = start(admin_api, user, profile)
        reading.result(timeout=timeout + 10)
    return answer, events


def test_spawn_progress_names_the_leased_gpu(admin_api, docker_client, clean_pool):
    [user] = new_users(admin_api, "gpu", 1)
    answer, events = start_reading_progress(admin_api, user)
    assert answer.status_code in (201, 202), answer.text
    [container] = user_containers(docker_client, user)
    [gpu] = gpus_of(container)
    messages = [event.get("message", "") for event in events]
    assert messages[0] == "Server requested", messages
    assert events[-1].get("ready") is True, f"spawn did not end ready; events: {events}"
    # Configured ids carry no model name: the message is the id alone.
    assert [m for m in messages if m.startswith("Leased GPU")] == [f"Leased GPU {gpu}"], messages


def test_gpu_server_gets_the_runtime_and_cuda_devices_renumbered_from_zero(admin_api, docker_client, clean_pool):
    first, second = new_users(admin_api, "gpu", 2)
    for user in (first, second):  # the second one's device is not the host's device 0
        assert start(admin_api, user).status_code in (201, 202)
        wait_running(admin_api, user)
    [container] = user_containers(docker_client, second)
    assert container.attrs["HostConfig"]["Runtime"] == SETTINGS["gpu_runtime"]
    [gpu] = gpus_of(container)  # also: NVIDIA_VISIBLE_DEVICES is the leased id
    env = container_env(container)
    assert gpu != "0" and env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"


def test_hubctl_gpus_lists_the_holder_and_gpus_free_stops_the_server(admin_api, docker_client, clean_pool):
    [user] = new_users(admin_api, "gpu", 1)
    assert start(admin_api, user).status_code in (201, 202)
    wait_running(admin_api, user)
    [container] = user_containers(docker_client, user)
    [gpu] = gpus_of(container)
    table = hubctl("gpus").stdout
    assert any(line.split()[0] == gpu and user in line for line in table.splitlines()[1:]), table
    rows = {row["gpu"]: row for row in json.loads(hubctl("gpus", "--json").stdout)}
    assert set(rows) == INVENTORY and rows[gpu]["users"] == [user] and rows[gpu]["mode"] == "exclusive"
    assert all(not rows[other]["users"] for other in INVENTORY - {gpu})
    out = hubctl("gpus", "free", gpu).stdout
    assert user in out
    wait_stopped(admin_api, user)
    assert user_containers(docker_client, user) == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "gpu-1", "gpus": 5}, "gpus"),
        ({"profile": "gpu-1", "gpus": "one"}, "gpus"),
        ({"profile": "gpu-1", "gpus": -1}, "gpus"),
        ({"profile": "gpu-all"}, "admin"),
    ],
)
def test_bad_gpu_requests_take_no_lease(options, message, admin_api, docker_client, clean_pool):
    [user] = new_users(admin_api, "gpu", 1)
    r = api(admin_api, "POST", f"/users/{user}/server", json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert user_containers(docker_client, user) == []
    assert held(docker_client) == {}


def test_quotas_per_user_group_and_admin(admin_api, docker_client, clean_pool):
    [user] = new_users(admin_api, "gpu", 1)
    r = start(admin_api, user, "gpu-2")
    assert r.status_code == 400 and "per-user limit is 1 GPU" in r.json()["message"], r.text
    assert user_containers(docker_client, user) == []

    api(admin_api, "POST", "/groups/bigjobs")  # 201, or 409 when it exists
    assert api(admin_api, "POST", "/groups/bigjobs/users", json={"users": [user]}).ok
    assert start(admin_api, user, "gpu-2").status_code in (201, 202)
    wait_running(admin_api, user)
    assert len(held(docker_client)[user]) == 2

    # Admins may exceed every quota.
    assert start(admin_api, "admin", "gpu-2").status_code in (201, 202)
    wait_running(admin_api, "admin")
    assert len(held(docker_client)["admin"]) == 2
    assert_no_double_booking(docker_client)


@pytest.mark.parametrize(
    "form, bad",
    [({"profile": "no-such-profile"}, "no-such-profile"), ({"profile": "gpu-1", "sneaky": "1"}, "sneaky")],
)
def test_bad_spawn_form_is_refused(form, bad, make_user, docker_client, clean_pool):
    user, browser = make_user()
    r = browser.spawn(form)
    assert r.status_code == 400 and bad in r.text
    assert user_containers(docker_client, user) == []
    assert held(docker_client) == {}
