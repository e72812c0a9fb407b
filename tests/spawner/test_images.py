"""Which image a spawn gets: the configured image is always allowed; allowed_images
limits what a profile may choose (issue 7, "Spawning")."""

import asyncio

import pytest
import requests

from .conftest import ALT_IMAGE, DEFAULT_IMAGE, OUTSIDE_IMAGE, spawn, spawn_ok, stop, user_objects

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CPU = {"display_name": "CPU", "slug": "cpu", "default": True, "kubespawner_override": {"gpus": 0}}
PICK_IMAGE = {
    "display_name": "Pick an image",
    "slug": "pick-image",
    "profile_options": {
        "image": {
            "display_name": "Image",
            "choices": {
                "standard": {"default": True, "kubespawner_override": {"image": DEFAULT_IMAGE}},
                "alt": {"kubespawner_override": {"image": ALT_IMAGE}},
                "outside": {"kubespawner_override": {"image": OUTSIDE_IMAGE}},
            },
        }
    },
}


async def test_default_image_starts_answers_and_stops_without_allowed_images(hub, engine, make_user):
    user = make_user()  # ordinary DockerSpawner config: an image, no allowed_images, no profile_list
    info = await spawn_ok(hub, user)  # no image requested
    assert info["Config"]["Image"] == DEFAULT_IMAGE

    # The server checks this token with the hub: user containers reach the in-process hub.
    url = f"{user.spawner.server.url}api/status"
    headers = {"Authorization": f"token {user.new_api_token()}"}
    r = await asyncio.to_thread(requests.get, url, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert "kernels" in r.json()

    await stop(hub, user)
    containers, _ = user_objects(engine, user)
    assert containers == [], "the container outlived its server (remove is the default)"


@pytest.mark.parametrize("allowed_images", [[ALT_IMAGE], {"alt": ALT_IMAGE}], ids=["list", "dict"])
async def test_default_image_starts_when_allowed_images_lists_only_other_images(
    hub, spawner_config, make_user, allowed_images
):
    spawner_config.allowed_images = allowed_images
    user = make_user()
    info = await spawn_ok(hub, user)  # no image requested
    assert info["Config"]["Image"] == DEFAULT_IMAGE


async def test_image_choice_outside_allowed_images_is_refused_with_400_and_creates_nothing(
    hub, engine, spawner_config, make_user
):
    spawner_config.allowed_images = [ALT_IMAGE]
    spawner_config.profile_list = [CPU, PICK_IMAGE]
    user = make_user()
    r = await spawn(hub, user, {"profile": "pick-image", "image": "outside"})
    assert r.status_code == 400, r.text
    assert not user.spawner.active
    assert user_objects(engine, user) == ([], [])


async def test_image_choice_in_allowed_images_gets_that_image(hub, spawner_config, make_user):
    spawner_config.allowed_images = [ALT_IMAGE]
    spawner_config.profile_list = [CPU, PICK_IMAGE]
    user = make_user()
    info = await spawn_ok(hub, user, {"profile": "pick-image", "image": "alt"})
    assert info["Config"]["Image"] == ALT_IMAGE


async def test_dockerspawners_own_image_request_picks_from_allowed_images(hub, spawner_config, make_user):
    """A profile without an "image" option leaves DockerSpawner's REST "image" request as it is documented."""
    spawner_config.allowed_images = {"alt": ALT_IMAGE}
    user = make_user()
    info = await spawn_ok(hub, user, {"image": "alt"})
    assert info["Config"]["Image"] == ALT_IMAGE


@pytest.mark.parametrize("allowed_images, request_image", [([], DEFAULT_IMAGE), ({"alt": ALT_IMAGE}, OUTSIDE_IMAGE)])
async def test_dockerspawners_image_request_outside_allowed_images_is_refused(
    hub, engine, spawner_config, make_user, allowed_images, request_image
):
    spawner_config.allowed_images = allowed_images
    user = make_user()
    r = await spawn(hub, user, {"image": request_image})
    assert r.status_code == 400, r.text
    assert user_objects(engine, user) == ([], [])
