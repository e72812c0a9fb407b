import re
from pathlib import Path

import pytest
import yaml

from spawner.settings import SCHEMA, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_any_input():
    s = load_settings({})
    assert s["prefix"] == "gpuhub"
    assert s["shm_size"] == "2G"
    assert s["gpus"] == [] and s["gpu_quota"] is None


def test_environment_parsing():
    s = load_settings(
        {
            "GPUHUB_GPUS": "0, 1,GPU-4f0c7a3e-0000-1111-2222-333344445555",
            "GPUHUB_CPU_LIMIT": "4",
            "GPUHUB_SHM_SIZE": "8g",
            "GPUHUB_GPU_QUOTA": "2",
            "GPUHUB_GPU_GROUP_QUOTAS": "students=1, staff=4",
            "GPUHUB_ADMIN_USERS": "alice,bob",
        }
    )
    assert s["gpus"] == ["0", "1", "GPU-4f0c7a3e-0000-1111-2222-333344445555"]
    assert s["cpu_limit"] == 4.0 and s["shm_size"] == "8G" and s["gpu_quota"] == 2
    assert s["gpu_group_quotas"] == {"students": 1, "staff": 4}
    assert s["admin_users"] == ["alice", "bob"]


def test_empty_variable_means_default():
    assert load_settings({"GPUHUB_IMAGE": ""})["image"] == SCHEMA["image"].default


def test_file_then_environment(tmp_path):
    f = tmp_path / "settings.yml"
    f.write_text("mem_limit: 16G\ncpu_limit: 8\nprofiles:\n  - {slug: x, display_name: X}\n")
    s = load_settings({"GPUHUB_SETTINGS_FILE": str(f), "GPUHUB_CPU_LIMIT": "2"})
    assert s["mem_limit"] == "16G" and s["cpu_limit"] == 2.0
    assert s["profiles"] == [{"slug": "x", "display_name": "X"}]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"GPUHUB_NO_SUCH": "1"}, "unknown setting"),
        ({"GPUHUB_CPU_LIMIT": "lots"}, "GPUHUB_CPU_LIMIT.*number"),
        ({"GPUHUB_CPU_LIMIT": "-1"}, "positive"),
        ({"GPUHUB_SHM_SIZE": "big"}, "512M"),
        ({"GPUHUB_GPU_QUOTA": "1.5"}, "integer"),
        ({"GPUHUB_GPU_MODE": "magic"}, "device-requests, runtime"),
        ({"GPUHUB_PREFIX": "Bad Prefix"}, "lower-case"),
        ({"GPUHUB_GPU_GROUP_QUOTAS": "students"}, "group=N"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


@pytest.mark.parametrize(
    "content, message", [("a: [", "not valid YAML"), ("- 1\n", "mapping"), ("bogus: 1\n", "unknown")]
)
def test_bad_settings_file(tmp_path, content, message):
    f = tmp_path / "s.yml"
    f.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings({"GPUHUB_SETTINGS_FILE": str(f)})


def test_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"GPUHUB_SETTINGS_FILE": str(tmp_path / "nope.yml")})


def test_compose_passes_every_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    passed = {k[len("GPUHUB_") :].lower() for k in compose["services"]["hub"]["environment"]} - {"settings_file"}
    assert passed == set(SCHEMA) - {"data_dir"}


def test_example_and_test_settings_are_valid():
    for path in ("settings.example.yml", "tests/integration/settings.yml"):
        load_settings({"GPUHUB_SETTINGS_FILE": str(ROOT / path)})
    documented = set(re.findall(r"^# ([a-z_]+):", (ROOT / "settings.example.yml").read_text(), re.M))
    assert documented <= set(SCHEMA)
