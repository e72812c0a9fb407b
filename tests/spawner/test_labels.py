"""Labels carry the username as it is: never a template (issue 7, "Spawning")."""

import uuid

import pytest

from spawner.labels import LABEL_USER

from .conftest import DEFAULT_IMAGE, spawn_ok

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


# "{servername}" renders to "" for the default server: the label names another user (the
# name without it); "{0}" makes str.format raise IndexError, which DockerSpawner does not catch.
@pytest.mark.parametrize("template", ["{servername}", "{0}"], ids=["another-users-name", "format-error"])
async def test_container_and_volume_labels_carry_a_username_with_braces_verbatim(
    hub, engine, spawner_config, make_user, template
):
    spawner_config.allowed_images = [DEFAULT_IMAGE]  # as jupyterhub_config.py does: only labels under test
    user = make_user(f"u{uuid.uuid4().hex[:6]}{template}")
    info = await spawn_ok(hub, user)
    assert info["Config"]["Labels"][LABEL_USER] == user.name
    home = next(m for m in info["Mounts"] if m["Destination"] == user.spawner.home_mount)
    assert engine.volumes.get(home["Name"]).attrs["Labels"][LABEL_USER] == user.name
