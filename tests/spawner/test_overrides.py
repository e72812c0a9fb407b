"""A profile's overrides reach the container under the platform's settings and end with the
spawn; a callable profile_list may be async; the site's mistakes are 500s (issue 8)."""

import asyncio
from urllib.parse import urljoin

import pytest
import requests

from .conftest import PREFIX, spawn, spawn_ok, stop, user_objects

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SMALL = {"display_name": "Small", "slug": "small", "default": True}
TEAM_VOLUME = f"{PREFIX}-team-data"
TEAM = {
    "display_name": "Team",
    "slug": "team",
    "spawner_override": {
        "environment": {"TEAM": "vision", "SITE_ONLY": None},
        "read_only_volumes": {TEAM_VOLUME: "/team"},
        "extra_host_config": {"dns": ["192.0.2.53"]},
        "extra_create_kwargs": {"labels": {"lab.team": "vision"}},
    },
}


def configure(spawner_config) -> None:
    spawner_config.environment = {"SITE": "site", "SITE_ONLY": "site"}
    spawner_config.extra_host_config = {"dns_search": ["site.example"], "cap_drop": [], "pids_limit": 0}
    spawner_config.extra_create_kwargs = {"user": "root"}
    spawner_config.profile_list = [SMALL, TEAM]


def env_of(info: dict) -> dict:
    return dict(item.split("=", 1) for item in info["Config"]["Env"])


def check_platform_settings(info: dict) -> None:
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["PidsLimit"] == 8192 and info["Config"]["User"] == "1000:100"


async def test_profile_overrides_reach_the_container_under_the_platform_and_end_with_the_spawn(
    hub, engine, spawner_config, make_user
):
    configure(spawner_config)
    user = make_user()
    info = await spawn_ok(hub, user, {"profile": "team"})
    env = env_of(info)
    assert env["SITE"] == "site" and env["TEAM"] == "vision" and "SITE_ONLY" not in env
    host = info["HostConfig"]
    assert host["DnsSearch"] == ["site.example"] and host["Dns"] == ["192.0.2.53"]  # the site's and the profile's
    assert info["Config"]["Labels"]["lab.team"] == "vision"
    assert any(m["Destination"] == "/team" and not m["RW"] for m in info["Mounts"])
    check_platform_settings(info)
    await stop(hub, user)

    info = await spawn_ok(hub, user, {"profile": "small"})
    env = env_of(info)
    assert env["SITE_ONLY"] == "site" and "TEAM" not in env
    assert info["HostConfig"]["DnsSearch"] == ["site.example"] and not info["HostConfig"]["Dns"]
    assert "lab.team" not in info["Config"]["Labels"]
    assert not any(m["Destination"] == "/team" for m in info["Mounts"])
    check_platform_settings(info)


async def test_what_a_hook_sets_is_this_spawns_value_not_the_last_ones(hub, spawner_config, make_user):
    """JupyterHub runs auth_state_hook before the profile: its value must not be replaced
    by the last spawn's when the profile's values are put back."""
    spawn_numbers = iter(range(1, 100))

    def number_the_spawn(spawner, auth_state):  # in place, as JupyterHub's docs do
        spawner.environment["SPAWN_NUMBER"] = str(next(spawn_numbers))

    configure(spawner_config)
    spawner_config.auth_state_hook = number_the_spawn
    user = make_user()
    assert env_of(await spawn_ok(hub, user, {"profile": "team"}))["SPAWN_NUMBER"] == "1"
    spawner = user.spawner
    await stop(hub, user)
    user.spawners[""] = spawner  # reuse the object, as test_profiles.py explains
    env = env_of(await spawn_ok(hub, user, {"profile": "team"}))
    assert user.spawner is spawner and env["SPAWN_NUMBER"] == "2" and env["TEAM"] == "vision"


def _spawn_page(hub, name: str) -> str:
    """The spawn page as the user sees it, straight from the hub (no proxy here)."""
    session = requests.Session()
    login = urljoin(hub.hub.url, "login")
    session.get(login, timeout=30).raise_for_status()
    xsrf = session.cookies["_xsrf"]
    r = session.post(login, params={"_xsrf": xsrf}, data={"username": name, "password": name}, timeout=30)
    r.raise_for_status()
    r = session.get(urljoin(hub.hub.url, "spawn"), headers={"Sec-Fetch-Mode": "navigate"}, timeout=30)
    r.raise_for_status()
    return r.text


async def test_an_async_profile_list_is_offered_on_the_spawn_page_and_spawns(hub, spawner_config, make_user):
    async def profile_list(spawner):
        await asyncio.sleep(0)
        return [SMALL, dict(TEAM, display_name=f"Team of {spawner.user.name}")]

    configure(spawner_config)
    spawner_config.profile_list = profile_list
    user = make_user()
    page = await asyncio.to_thread(_spawn_page, hub, user.name)
    assert f"Team of {user.name}" in page and 'value="team"' in page
    info = await spawn_ok(hub, user, {"profile": "team"})
    assert env_of(info)["TEAM"] == "vision"


@pytest.mark.parametrize(
    "site_error",
    [{"gpu_ids": ["GPU-nope"]}, {"profile_list": lambda spawner: [dict(SMALL, spawner_override={"cap_add": []})]}],
    ids=["gpu_ids", "callable-profile_list"],
)
async def test_a_site_configuration_error_is_a_500_and_creates_nothing(
    hub, engine, spawner_config, make_user, site_error
):
    for key, value in site_error.items():
        setattr(spawner_config, key, value)
    user = make_user()
    r = await spawn(hub, user, {})
    assert r.status_code == 500, r.text
    assert "an admin must fix it" in r.json()["message"]
    assert user_objects(engine, user) == ([], [])
