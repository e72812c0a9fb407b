"""What the spawn page offers and what REST refuses, on the real spawner (issue 14): a
profile for a group (allowed_groups), and a host without GPUs."""

import json
import uuid

import pytest

from spawner import inventory
from spawner import spawner as spawner_module

from .conftest import hub_api, spawn, spawn_ok, user_objects

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SMALL = {"display_name": "Small", "slug": "small", "default": True, "spawner_override": {"gpus": 0}}


def no_nvidia_smi(argv):
    raise FileNotFoundError("no nvidia-smi: this test's host has no GPU driver")


@pytest.fixture
def no_gpus(spawner_config, monkeypatch):
    """A host without GPUs, whatever this one has: inventory's seams say no driver, no ids configured."""
    monkeypatch.setattr(inventory, "load_nvml", lambda: None)
    monkeypatch.setattr(inventory, "run_nvidia_smi", no_nvidia_smi)
    spawner_config.gpu_ids = []
    spawner_module._discover.cache_clear()
    yield
    spawner_module._discover.cache_clear()


async def test_a_group_profile_is_refused_with_403_naming_the_group_until_the_user_joins_it(
    hub, engine, spawner_config, make_user
):
    group = f"big{uuid.uuid4().hex[:6]}"
    spawner_config.profile_list = [SMALL, {"display_name": "Group", "slug": "grp", "allowed_groups": [group]}]
    user = make_user()
    assert f"Cannot start now: only for members of {group}" in await user.spawner.get_options_form()

    r = await spawn(hub, user, {"profile": "grp"})
    assert r.status_code == 403, r.text
    assert f"'grp' is only for members of {group}" in r.json()["message"]
    assert not user.spawner.active and user_objects(engine, user) == ([], [])

    assert (await hub_api(hub, "post", "groups", group)).status_code == 201
    r = await hub_api(hub, "post", "groups", group, "users", data=json.dumps({"users": [user.name]}))
    assert r.status_code == 200, r.text
    assert "Cannot start now" not in await user.spawner.get_options_form()
    await spawn_ok(hub, user, {"profile": "grp"})


async def test_a_host_without_gpus_hides_gpu_profiles_and_refuses_them_through_rest(
    hub, engine, spawner_config, make_user, no_gpus
):
    user = make_user()  # the built-in profiles
    form = await user.spawner.get_options_form()
    assert 'value="cpu"' in form and 'value="gpu-1"' not in form and "GPUs free" not in form
    r = await spawn(hub, user, {"profile": "gpu-1"})
    assert r.status_code == 400 and "this server has 0" in r.json()["message"], r.text
    assert user_objects(engine, user) == ([], [])

    spawner_config.hide_gpu_profiles_without_gpus = False
    form = await make_user().spawner.get_options_form()
    assert 'value="gpu-1" disabled>' in form and "Cannot start now: no GPUs on this host" in form
