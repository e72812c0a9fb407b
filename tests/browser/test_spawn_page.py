"""The spawn page shows what can start (issue 14), in Chromium, and REST refuses the same:
free GPUs and the user's quota per GPU profile; over quota, all leased and not in the
profile's allowed_groups shown disabled with the reason.

A deployment of its own, PREFIX-spawnpage on PORT+700, so that its extra profile (for
the group bigjobs) leaves the other suites' profiles alone. Screenshots: .build/screenshots.
"""

import json
import re
import uuid

import pytest

from spawner.labels import LABEL_GPUS
from spawner.profiles import DEFAULT_PROFILES
from tests.deployment import (
    PORT,
    PREFIX,
    ROOT,
    Deployment,
    api,
    create_user,
    user_containers,
    wait_running,
    wait_stopped,
)

from .test_browser import log_in

pytestmark = pytest.mark.integration

BIG = {"display_name": "Big jobs", "slug": "big", "description": "Two GPUs, for the group bigjobs.",
       "allowed_groups": ["bigjobs"], "spawner_override": {"gpus": 2}}  # fmt: skip
SPAWN_PAGE = Deployment(f"{PREFIX}-spawnpage", PORT + 700, GPUHUB_PROFILES=json.dumps([*DEFAULT_PROFILES, BIG]))


@pytest.fixture(scope="module")
def hub(docker_client):
    with SPAWN_PAGE.running(docker_client):
        yield SPAWN_PAGE.admin_api()


def profiles_shown(page) -> dict[str, tuple[bool, str]]:
    """{slug: (enabled, label text)} of the spawn page's profiles."""
    page.goto(f"{SPAWN_PAGE.base_url}/hub/spawn")
    page.wait_for_selector("form#spawn_form input[name=profile]")
    radios = page.locator("form#spawn_form input[name=profile]")
    shown = {}
    for i in range(radios.count()):
        slug = radios.nth(i).get_attribute("value")
        shown[slug] = (radios.nth(i).is_enabled(), page.inner_text(f"label[for='profile-item-{slug}']"))
    return shown


def start(admin, user: str, **options):
    return api(admin, "POST", f"/users/{user}/server", json=options)


def test_spawn_page_shows_free_gpus_quota_and_why_a_profile_cannot_start(page, hub, docker_client):
    shots = ROOT / ".build/screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    name, password = create_user(f"sp{uuid.uuid4().hex[:8]}", on=SPAWN_PAGE)
    log_in(page, name, password, base_url=SPAWN_PAGE.base_url)

    shown = profiles_shown(page)
    assert list(shown) == ["cpu", "gpu-1", "gpu-2", "big"], shown  # no admin-only profile
    free = int(re.search(r"(\d) of 4 GPUs free; your limit: 1 GPU", shown["gpu-1"][1]).group(1))
    assert shown["cpu"][0] and shown["gpu-1"][0] == (free > 0)
    assert not shown["gpu-2"][0] and "Cannot start now: needs 2 GPUs, your per-user limit is 1" in shown["gpu-2"][1]
    assert not shown["big"][0] and "Cannot start now: only for members of bigjobs" in shown["big"][1]
    page.screenshot(path=shots / "spawn-page-availability.png", full_page=True)

    # The admin takes every free GPU: the user's GPU profile is shown disabled, not offered.
    assert start(hub, "admin", profile="gpu-all", gpus=free).status_code in (201, 202)
    wait_running(hub, "admin")
    shown = profiles_shown(page)
    assert not shown["gpu-1"][0] and "Cannot start now: all GPUs are leased" in shown["gpu-1"][1], shown
    assert "0 of 4 GPUs free" in shown["gpu-1"][1] and page.is_checked("#profile-item-cpu")
    page.screenshot(path=shots / "spawn-page-all-leased.png", full_page=True)

    # REST refuses the same cases, with a 4xx naming the reason (503 for a lease none can have now).
    r = start(hub, name, profile="big")
    assert r.status_code == 403 and "'big' is only for members of bigjobs" in r.json()["message"], r.text
    r = start(hub, name, profile="gpu-2")
    assert r.status_code == 400 and "per-user limit is 1 GPU" in r.json()["message"], r.text
    r = start(hub, name, profile="gpu-1")
    assert r.status_code == 503 and "No free GPU" in r.json()["message"], r.text
    assert not user_containers(docker_client, name, SPAWN_PAGE.prefix)

    # In the group (JupyterHub's groups API), with the GPUs back: the page offers it, and it starts.
    api(hub, "DELETE", "/users/admin/server")
    wait_stopped(hub, "admin")
    assert api(hub, "POST", "/groups/bigjobs").status_code in (201, 409)
    assert api(hub, "POST", "/groups/bigjobs/users", json={"users": [name]}).status_code == 200
    shown = profiles_shown(page)
    assert shown["big"][0] and "your limit: 2 GPUs" in shown["big"][1], shown
    page.check("#profile-item-big")
    page.click("form#spawn_form [type=submit]")
    wait_running(hub, name)
    [container] = user_containers(docker_client, name, SPAWN_PAGE.prefix)
    assert len(container.labels[LABEL_GPUS].split(",")) == 2
    api(hub, "DELETE", f"/users/{name}/server")
    wait_stopped(hub, name)
