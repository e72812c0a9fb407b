"""Fixtures for the image tests: they run the BUILT images (`make images`)."""

import docker
import pytest

from ..deployment import HUB_IMAGE, STANDIN_IMAGE
from .imagetools import PREFIX, REPO, Box


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(f"the Docker engine is not reachable: {e}")
    yield client
    for c in client.containers.list(all=True, filters={"name": PREFIX}):
        c.remove(force=True, v=True)
    client.close()


def _image(client, tag):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {tag} is missing: run `make images` (scripts/build-images) first")


@pytest.fixture(scope="session")
def hub_image(docker_client):
    return _image(docker_client, HUB_IMAGE)


@pytest.fixture(scope="session")
def standin_image(docker_client):
    return _image(docker_client, STANDIN_IMAGE)


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
