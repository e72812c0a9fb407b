"""The one size rule, and that the settings, the profile checker and the spawner all use it."""

import pytest

from spawner import GPUDockerSpawner, profiles
from spawner.settings import SettingsError, load_settings
from spawner.sizes import parse_size


@pytest.mark.parametrize(
    "value, size", [("512m", "512M"), (" 8G ", "8G"), ("1.5g", "1.5G"), (1024, "1024"), ("64", "64")]
)
def test_sizes_are_normalised(value, size):
    assert parse_size(value) == size


BAD = ["2GG", "G", "", "-1G", "1.G", "8 G", None, True, -5, 2.5, "1e3M"]


@pytest.mark.parametrize("value", BAD)
def test_bad_sizes_are_refused_everywhere(value):
    with pytest.raises(ValueError):
        parse_size(value)
    if isinstance(value, str):
        with pytest.raises(SettingsError, match="shm_size"):
            load_settings({"GPUHUB_SHM_SIZE": value or " "})
    with pytest.raises(profiles.ProfileError, match="shm_size"):
        profiles.normalize_profiles([{"display_name": "x", "spawner_override": {"shm_size": value}}])
    with pytest.raises(Exception, match="size"):
        GPUDockerSpawner(shm_size=value)


def test_a_profile_may_lift_the_memory_limit_but_not_shm():
    [profile] = profiles.normalize_profiles([{"display_name": "x", "spawner_override": {"mem_limit": None}}])
    assert profile["spawner_override"]["mem_limit"] is None
