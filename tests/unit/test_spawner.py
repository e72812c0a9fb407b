"""GPUDockerSpawner's profile chain without Docker or a hub: a stub user, the real spawner
class, its traits read back after ``apply_user_options`` (what JupyterHub calls)."""

import logging
import threading
from types import SimpleNamespace

import pytest
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from spawner import GPUDockerSpawner, inventory
from spawner import spawner as spawner_module
from spawner.names import WORKSPACE_VOLUME

SITE_IMAGE = "lab/base:1"
ALT_IMAGE = "lab/alt:1"

SMALL = {"display_name": "Small", "slug": "small", "default": True}
RICH = {
    "display_name": "Rich",
    "slug": "rich",
    "spawner_override": {
        "environment": {"LAB": "rich", "SITE_ONLY": None},
        "volumes": {"/srv/team": "/team"},
        "extra_host_config": {"dns_search": ["lab.example"], "cpu_period": 50_000},
        "extra_create_kwargs": {"labels": {"lab.project": "rich"}},
        "cmd": ["jupyterhub-singleuser", "--debug"],
        "mem_guarantee": "1G",
        "start_timeout": 300,
        "mem_limit": "768M",
        "shm_size": "256M",
    },
}
GPU = {"display_name": "GPU", "slug": "gpu", "spawner_override": {"gpus": 2}}
PICK_IMAGE = {
    "display_name": "Pick an image",
    "slug": "pick",
    "profile_options": {
        "image": {
            "display_name": "Image",
            "choices": {
                "site": {"default": True, "spawner_override": {"image": SITE_IMAGE}},
                "alt": {"spawner_override": {"image": ALT_IMAGE}},
                "outside": {"spawner_override": {"image": "evil/miner:1"}},
            },
        }
    },
}
SITE_ENV = {"SITE": "1", "SITE_ONLY": "x"}
SITE_HOST_CONFIG = {"dns": ["192.0.2.53"], "cpu_period": 100_000, "cap_drop": [], "pids_limit": 0}
PLATFORM_HOST_CONFIG = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"], "pids_limit": 8192}


@pytest.fixture(autouse=True)
def four_gpus(monkeypatch):
    """The inventory: four GPUs, whatever the host has; records the thread discovery ran on."""
    threads = []

    def discover(configured):
        threads.append(threading.get_ident())
        return [inventory.Gpu(f"GPU-{i}") for i in range(4)]

    monkeypatch.setattr(inventory, "discover", discover)
    spawner_module._discover.cache_clear()
    yield threads
    spawner_module._discover.cache_clear()


def config(**traits) -> Config:
    c = Config()
    c.GPUDockerSpawner.image = SITE_IMAGE
    c.GPUDockerSpawner.environment = dict(SITE_ENV)
    c.GPUDockerSpawner.extra_host_config = dict(SITE_HOST_CONFIG)
    c.GPUDockerSpawner.profile_list = [SMALL, RICH, GPU, PICK_IMAGE]
    for key, value in traits.items():
        setattr(c.GPUDockerSpawner, key, value)
    return c


def make(admin=False, groups=(), **traits) -> GPUDockerSpawner:
    user = SimpleNamespace(name="alice", admin=admin, groups=[SimpleNamespace(name=g) for g in groups])
    return GPUDockerSpawner(user=user, config=config(**traits))


async def apply(spawner, options, auth_state=None):
    """What JupyterHub 5.5's user.spawn does before start(), in its order."""
    spawner.clear_state()
    await spawner.run_auth_state_hook(auth_state)
    await spawner.apply_group_overrides()
    await maybe_future(spawner.apply_user_options(spawner, options))  # may be async, JupyterHub awaits it


async def refused(spawner, options, status=400) -> str:
    with pytest.raises(web.HTTPError) as error:
        await apply(spawner, options)
    assert error.value.status_code == status, error.value
    return getattr(error.value, "jupyterhub_message", error.value.log_message)


# -- overrides --------------------------------------------------------------


async def test_every_override_key_lands_on_its_setting_and_dicts_merge_onto_the_configured_value():
    spawner = make()
    await apply(spawner, {"profile": "rich"})
    assert spawner.environment == {"SITE": "1", "LAB": "rich"}  # None removed SITE_ONLY
    assert spawner.volumes == {WORKSPACE_VOLUME: "/home/jovyan", "/srv/team": "/team"}
    assert spawner.cmd == ["jupyterhub-singleuser", "--debug"]
    assert spawner.mem_guarantee == 1024**3 and spawner.start_timeout == 300
    assert spawner.mem_limit == 768 * 1024**2 and spawner.shm_size == "256M"
    host = await spawner.extra_host_config(spawner)
    assert host["dns"] == ["192.0.2.53"] and host["dns_search"] == ["lab.example"]  # site's and profile's
    assert host["cpu_period"] == 50_000  # the profile's over the site's
    create = await spawner.extra_create_kwargs(spawner)
    assert create["labels"]["lab.project"] == "rich"


async def test_next_spawn_starts_from_the_configured_values():
    spawner = make()
    await apply(spawner, {"profile": "rich"})
    await apply(spawner, {"profile": "small"})
    assert spawner.environment == SITE_ENV
    assert spawner.volumes == {WORKSPACE_VOLUME: "/home/jovyan"}
    fresh = make()
    for key in ("cmd", "start_timeout", "shm_size", "mem_guarantee", "image", "gpus"):
        assert getattr(spawner, key) == getattr(fresh, key), key
    assert not spawner.mem_limit and not fresh.mem_limit  # no limit (None comes back as 0)
    host = await spawner.extra_host_config(spawner)
    assert "dns_search" not in host and host["cpu_period"] == 100_000
    assert "lab.project" not in (await spawner.extra_create_kwargs(spawner))["labels"]


async def test_a_stop_brings_the_configured_values_back():
    spawner = make()
    await apply(spawner, {"profile": "rich"})
    spawner.clear_state()  # the last step of DockerSpawner.stop and of JupyterHub's user.stop
    assert spawner.environment == SITE_ENV and not spawner.mem_limit


async def test_what_a_hook_sets_before_the_profile_is_this_spawns_value_not_the_last_ones():
    def from_auth_state(spawner, auth_state):  # as JupyterHub's docs do: in place
        spawner.environment["UPSTREAM_TOKEN"] = auth_state["token"]

    spawner = make(auth_state_hook=from_auth_state)
    await apply(spawner, {"profile": "rich"}, auth_state={"token": "first"})
    await apply(spawner, {"profile": "rich"}, auth_state={"token": "second"})
    assert spawner.environment == {"SITE": "1", "LAB": "rich", "UPSTREAM_TOKEN": "second"}


async def test_group_overrides_apply_each_spawn_and_end_with_the_membership():
    group_overrides = {"beta": {"groups": ["beta"], "spawner_override": {"environment": {"BETA": "1"}}}}
    spawner = make(groups=["beta"], group_overrides=group_overrides)
    await apply(spawner, {"profile": "rich"})
    assert spawner.environment == {"SITE": "1", "BETA": "1", "LAB": "rich"}
    await apply(spawner, {"profile": "small"})
    assert spawner.environment == {**SITE_ENV, "BETA": "1"}
    spawner.user.groups = []
    await apply(spawner, {"profile": "small"})
    assert spawner.environment == SITE_ENV


async def test_platform_settings_go_on_top_of_the_sites_and_the_profiles():
    spawner = make(extra_create_kwargs={"user": "root", "labels": {"gpuhub.user": "mallory", "site": "x"}})
    await apply(spawner, {"profile": "rich"})
    host = await spawner.extra_host_config(spawner)
    assert {key: host[key] for key in PLATFORM_HOST_CONFIG} == PLATFORM_HOST_CONFIG
    assert host["shm_size"] == "256M" and host["log_config"]["type"] == "json-file"
    create = await spawner.extra_create_kwargs(spawner)
    assert create["user"] == "1000:100"
    assert create["labels"] == {"gpuhub.user": "alice", "gpuhub.deployment": "jupyter", "site": "x",
                                "lab.project": "rich", "gpuhub.profile": "rich"}  # fmt: skip


async def test_an_async_site_extra_host_config_is_merged_under_the_platforms():
    async def site(spawner):
        return {"dns": [f"10.0.0.{len(spawner.user.name)}"], "security_opt": ["seccomp=unconfined"]}

    spawner = make(extra_host_config=site)
    await apply(spawner, {"profile": "rich"})
    host = await spawner.extra_host_config(spawner)
    assert host["dns"] == ["10.0.0.5"] and host["dns_search"] == ["lab.example"]
    assert host["security_opt"] == ["no-new-privileges:true"]


async def test_a_refused_choice_applies_nothing():
    spawner = make(gpu_quota=1)
    await refused(spawner, {"profile": "gpu"})
    assert spawner.gpus == 0 and spawner.environment == SITE_ENV


# -- images -----------------------------------------------------------------


async def test_profile_image_choice_must_be_the_configured_image_or_in_allowed_images():
    spawner = make(allowed_images=[ALT_IMAGE])
    await apply(spawner, {"profile": "pick", "image": "alt"})
    assert spawner.image == ALT_IMAGE and await spawner.check_allowed("anything") == ALT_IMAGE
    await apply(spawner, {"profile": "pick", "image": "site"})
    assert spawner.image == SITE_IMAGE
    message = await refused(spawner, {"profile": "pick", "image": "outside"})
    assert message == f"Image 'evil/miner:1' is not allowed; allowed images: {SITE_IMAGE}, {ALT_IMAGE}"
    assert spawner.image == SITE_IMAGE


async def test_dockerspawners_image_request_where_the_profile_has_no_image_option():
    spawner = make(allowed_images={"alt": ALT_IMAGE})
    await apply(spawner, {"profile": "small", "image": "alt"})
    assert spawner.image == ALT_IMAGE
    assert "is not in allowed_images: alt" in await refused(spawner, {"profile": "small", "image": ALT_IMAGE})


# -- quotas -----------------------------------------------------------------


async def test_quota_refuses_a_profile_above_the_limit_with_400():
    spawner = make(gpu_quota=1)
    message = await refused(spawner, {"profile": "gpu"})
    assert message == "You asked for 2 GPUs, but your per-user limit is 1 GPU."
    await apply(spawner, {"profile": "gpu", "gpus": 1})
    assert spawner.gpus == 1


async def test_group_quota_and_admins():
    await apply(make(gpu_quota=1, gpu_group_quotas={"staff": 2}, groups=["staff"]), {"profile": "gpu"})
    await apply(make(gpu_quota=0, admin=True), {"profile": "gpu"})
    assert "limit of group 'students' is 1 GPU" in await refused(
        make(gpu_quota=0, gpu_group_quotas={"students": 1}, groups=["students"]), {"profile": "gpu"}
    )


# -- the site's mistakes ----------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ({"enviroment": {"A": "1"}}, "'enviroment' is not a setting of GPUDockerSpawner"),
        ({"environment": "A=1"}, "The 'environment' trait of a GPUDockerSpawner instance expected a dict"),
        ({"oauth_client_allowed_scopes": ["admin:users"]}, "'oauth_client_allowed_scopes' may not be set"),
        ({"pids_limit": 0}, "'pids_limit' may not be set by a profile"),
        ({"gpu_quota": 8}, "'gpu_quota' may not be set by a profile"),
        ({"container_image": "evil/miner"}, "'container_image' may not be set by a profile: a deprecated alias"),
        ({"env_keep": ["GPUHUB_SECRET"]}, "'env_keep' may not be set by a profile"),
        ({"environment": {"NVIDIA_VISIBLE_DEVICES": "all"}}, "environment 'NVIDIA_VISIBLE_DEVICES' may not be set"),
        ({"extra_host_config": {"privileged": True}}, "extra_host_config 'privileged' may not be set"),
        ({"extra_host_config": {"cap_drop": []}}, "extra_host_config 'cap_drop' may not be set"),
        ({"extra_host_config": {"device_requests": []}}, "'device_requests' may not be set by a profile: devices"),
        ({"extra_host_config": {"network_mode": "host"}}, "extra_host_config 'network_mode' may not be set"),
        ({"extra_create_kwargs": {"user": "root"}}, "extra_create_kwargs 'user' may not be set"),
        ({"extra_create_kwargs": {"image": "evil/miner"}}, "extra_create_kwargs 'image' may not be set"),
        ({"extra_create_kwargs": {"labels": {"gpuhub.gpus": "0"}}}, "'labels gpuhub.gpus' may not be set"),
        ({"extra_resource_limits": {"example.com/fpga": 1}}, "'extra_resource_limits' is not a setting"),
    ],
)
def test_a_static_profile_list_that_sets_what_it_may_not_stops_the_configuration(override, message):
    bad = [SMALL, {"display_name": "Bad", "slug": "bad", "spawner_override": override}]
    with pytest.raises(TraitError, match=f"^GPUDockerSpawner.profile_list: Profile 'bad': .*{message}"):
        make(profile_list=bad)
    with pytest.raises(TraitError, match="Profile 'bad'"):
        GPUDockerSpawner.check_config(config(profile_list=bad))


def test_check_config_names_a_bad_key_in_a_choice_and_passes_a_good_list():
    choice = {"display_name": "x", "spawner_override": {"volumes": {"/a": "/b"}, "cap_add": ["SYS_ADMIN"]}}
    bad = [dict(SMALL, profile_options={"mount": {"choices": {"team": choice}}})]
    with pytest.raises(TraitError, match="Profile 'small' option 'mount' choice 'team': 'cap_add' is not a setting"):
        GPUDockerSpawner.check_config(config(profile_list=bad))
    GPUDockerSpawner.check_config(config())
    GPUDockerSpawner.check_config(Config())


async def test_an_empty_profile_list_is_the_built_in_set():
    spawner = make(profile_list=[])
    await apply(spawner, {"profile": "gpu-1"})
    assert spawner.gpus == 1 and spawner.mem_limit == 32 * 1024**3


async def test_an_async_profile_list_is_awaited_for_the_form_and_the_spawn():
    async def profile_list(spawner):
        return [SMALL, dict(GPU, display_name=f"GPUs for {spawner.user.name}")]

    spawner = make(profile_list=profile_list)
    assert "GPUs for alice" in await spawner.get_options_form()
    await apply(spawner, {"profile": "gpu"})
    assert spawner.gpus == 2


async def test_a_broken_callable_profile_list_is_a_logged_server_error(caplog):
    spawner = make(profile_list=lambda spawner: [dict(SMALL, spawner_override={"privileged": True})])
    with caplog.at_level(logging.ERROR):
        message = await refused(spawner, {}, status=500)
    assert "an admin must fix it" in message and "privileged" not in message  # not the user's business
    assert "Profile 'small': 'privileged' is not a setting of GPUDockerSpawner" in caplog.text
    with pytest.raises(web.HTTPError) as error:
        await spawner.get_options_form()
    assert error.value.status_code == 500


async def test_gpu_ids_naming_no_gpu_is_a_logged_server_error_not_a_400(monkeypatch, caplog):
    monkeypatch.setattr(inventory, "discover", inventory.validate_ids)  # the check discovery starts with
    with caplog.at_level(logging.ERROR):
        message = await refused(make(gpu_ids=["GPU-nope"], admin=True), {"profile": "small"}, status=500)
    assert "gpu_ids: Invalid GPU id 'GPU-nope'" in message  # an admin sees what
    assert "Invalid GPU id 'GPU-nope'" in caplog.text


async def test_gpu_discovery_runs_off_the_event_loop(four_gpus):
    await apply(make(), {"profile": "gpu"})
    assert four_gpus and threading.get_ident() not in four_gpus


async def test_an_http_error_of_the_profile_list_callable_is_passed_on_as_it_is():
    def profile_list(spawner):
        raise web.HTTPError(403, "not in term time")

    assert await refused(make(profile_list=profile_list), {}, status=403) == "not in term time"
