"""What a profile changes lasts for one spawn; what the client sends must be an object
(issue 7, "Spawning")."""

import pytest

from .conftest import ALT_IMAGE, DEFAULT_IMAGE, spawn, spawn_ok, stop, user_objects

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SMALL = {"display_name": "Small", "slug": "small", "default": True, "kubespawner_override": {"gpus": 0}}
BIG = {
    "display_name": "Big",
    "slug": "big",
    "kubespawner_override": {"image": ALT_IMAGE, "mem_limit": "768M", "cpu_limit": 1.5, "shm_size": "256M"},
}
MiB = 1024**2
BIG_SETTINGS = {"image": ALT_IMAGE, "memory": 768 * MiB, "cpu_quota": 150_000, "shm_size": 256 * MiB}
SITE_LIMITS = {"mem_limit": "512M", "cpu_limit": 1.0, "shm_size": "64M"}
SITE_DEFAULTS = {"image": DEFAULT_IMAGE, "memory": 512 * MiB, "cpu_quota": 100_000, "shm_size": 64 * MiB}
# A site that sets no limits: no memory or CPU limit, GPUDockerSpawner's 2G of /dev/shm.
NO_SITE_DEFAULTS = {"image": DEFAULT_IMAGE, "memory": 0, "cpu_quota": 0, "shm_size": 2048 * MiB}


def settings_of(info: dict) -> dict:
    host = info["HostConfig"]
    return {
        "image": info["Config"]["Image"],
        "memory": host["Memory"],
        "cpu_quota": host["CpuQuota"],
        "shm_size": host["ShmSize"],
    }


def configure(spawner_config, site_limits: dict) -> None:
    for key, value in site_limits.items():
        setattr(spawner_config, key, value)
    # Both images listed (as jupyterhub_config.py does), so only the profile chain is under test here.
    spawner_config.allowed_images = [DEFAULT_IMAGE, ALT_IMAGE]
    spawner_config.profile_list = [SMALL, BIG]


@pytest.mark.parametrize(
    "site_limits, defaults", [(SITE_LIMITS, SITE_DEFAULTS), ({}, NO_SITE_DEFAULTS)], ids=["site-limits", "no-limits"]
)
async def test_reused_spawner_gets_configured_defaults_for_a_profile_naming_fewer_keys(
    hub, spawner_config, make_user, site_limits, defaults
):
    """The issue's case: one spawner object runs a big profile, then a small one."""
    configure(spawner_config, site_limits)
    user = make_user()
    assert settings_of(await spawn_ok(hub, user, {"profile": "big"})) == BIG_SETTINGS
    spawner = user.spawner
    await stop(hub, user)
    # JupyterHub may drop a cleanly stopped spawner and build a new one for the next
    # spawn (6.x does); it keeps the object when a stop follows an error, and Spawner's
    # contract allows start() after stop(). Put it back, so that the next spawn reuses it.
    user.spawners[""] = spawner

    second = await spawn_ok(hub, user, {"profile": "small"})
    assert user.spawner is spawner
    assert settings_of(second) == defaults


async def test_next_spawn_through_the_hub_gets_configured_defaults_not_the_previous_profiles(
    hub, spawner_config, make_user
):
    """Stop and start as users do: nothing of the big profile may outlive its server
    (not in the configuration, not in state the hub keeps)."""
    configure(spawner_config, SITE_LIMITS)
    user = make_user()
    assert settings_of(await spawn_ok(hub, user, {"profile": "big"})) == BIG_SETTINGS
    await stop(hub, user)
    assert settings_of(await spawn_ok(hub, user, {"profile": "small"})) == SITE_DEFAULTS


@pytest.mark.parametrize("body", ["[1, 2]", '"cpu"', '{"user_options": [1, 2]}'])
async def test_spawn_body_that_is_not_an_object_is_refused_with_4xx_and_creates_nothing(hub, engine, make_user, body):
    user = make_user()
    r = await spawn(hub, user, body)
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text}"
    assert not user.spawner.active
    assert user_objects(engine, user) == ([], [])
