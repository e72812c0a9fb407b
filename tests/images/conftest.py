"""Fixtures for the image tests: they run the BUILT images (`make images`)."""

import pytest

from ..deployment import HUB_IMAGE, STANDIN_IMAGE, built_image
from .imagetools import PREFIX, REPO, Box


@pytest.fixture(scope="session", autouse=True)
def _remove_boxes(docker_client):
    yield
    for c in docker_client.containers.list(all=True, filters={"name": PREFIX}):
        c.remove(force=True, v=True)


@pytest.fixture(scope="session")
def hub_image(docker_client):
    return built_image(docker_client, HUB_IMAGE)


@pytest.fixture(scope="session")
def standin_image(docker_client):
    return built_image(docker_client, STANDIN_IMAGE)


def _box(client, image, **kwargs):
    box = Box(client, image.tags[0] if image.tags else image.id, **kwargs)
    yield box
    box.remove()


@pytest.fixture(scope="session")
def hub(docker_client, hub_image):
    yield from _box(docker_client, hub_image)


@pytest.fixture(scope="session")
def standin(docker_client, standin_image):
    yield from _box(docker_client, standin_image)


@pytest.fixture(scope="session")
def extra_ca():
    path = REPO / ".build" / "extra-ca.crt"
    assert path.exists(), f"{path} is missing: run `make images` (scripts/build-images)"
    return path.read_text()
