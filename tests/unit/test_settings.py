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


def compose_hub() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["hub"]


def interpolation_default(value: str) -> str:
    """``${VAR:-default}`` -> ``default``."""
    match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", value)
    assert match, f"not a ${{VAR:-default}}: {value!r}"
    return match.group(2)


def test_compose_passes_every_setting():
    """data_dir aside: compose mounts the hub's data volume at its default."""
    environment = compose_hub()["environment"]
    assert set(environment) - {k for k in environment if k.startswith("GPUHUB_")} == {"OAUTH_CLIENT_SECRET"}
    passed = {k[len("GPUHUB_") :].lower() for k in environment if k.startswith("GPUHUB_")} - {"settings_file"}
    wanted = set(SCHEMA) - {"data_dir"}
    missing = [f"GPUHUB_{name.upper()}: ${{GPUHUB_{name.upper()}:-}}" for name in sorted(wanted - passed)]
    assert not missing, f"add to the hub's environment in docker-compose.yml: {missing}"
    assert not passed - wanted, f"docker-compose.yml passes what is no setting of it: {sorted(passed - wanted)}"


def test_compose_repeats_no_default_but_the_names_of_its_own_objects():
    """An unset variable reaches the hub empty, i.e. as the schema's default; only
    prefix and network carry compose's own default, which must be the schema's."""
    environment = compose_hub()["environment"]
    for key, value in environment.items():
        name = key[len("GPUHUB_") :].lower()
        if name in ("prefix", "network"):
            assert interpolation_default(value) == SCHEMA[name].default, key
        elif name != "settings_file":
            assert value == f"${{{key}:-}}", f"{key}: the default belongs to the schema"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert interpolation_default(compose["networks"]["default"]["name"]) == SCHEMA["network"].default
    assert compose["volumes"]["hub-data"]["name"] == f"${{GPUHUB_PREFIX:-{SCHEMA['prefix'].default}}}-hub-data"


def test_compose_mounts_match_the_settings_defaults():
    hub = compose_hub()
    mounts = dict(volume.removesuffix(":ro").rsplit(":", 1) for volume in hub["volumes"])
    assert hub["environment"]["GPUHUB_SETTINGS_FILE"] == mounts["${HUB_SETTINGS_FILE:-./settings.yml}"]
    assert mounts["hub-data"] == SCHEMA["data_dir"].default
    assert SCHEMA["hub_connect_host"].default in hub["networks"]["default"]["aliases"]
    assert f"{SCHEMA['hub_connect_host'].default}:127.0.0.1" in hub["extra_hosts"]


def test_prefix_and_network_are_refused_in_the_settings_file(tmp_path):
    f = tmp_path / "settings.yml"
    f.write_text("prefix: lab\nnetwork: labnet\n")
    with pytest.raises(SettingsError, match=r"settings.yml: network, prefix can only be set as a variable"):
        load_settings({"GPUHUB_SETTINGS_FILE": str(f)})
    assert load_settings({"GPUHUB_PREFIX": "lab"})["prefix"] == "lab"


def test_defaults_are_what_their_parser_returns():
    for name, setting in SCHEMA.items():
        assert setting.parse(setting.default) == setting.default, name


def test_examples_parse_and_differ_from_the_defaults():
    for name, setting in SCHEMA.items():
        assert setting.parse(setting.example) != setting.default, name


def test_default_image_is_the_one_scripts_build_images_tags():
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert SCHEMA["image"].default == f"gpuhub/singleuser:{version}"


def example_file_settings() -> dict:
    """The commented-out settings of settings.example.yml, uncommented."""
    text = (ROOT / "settings.example.yml").read_text()
    lines = text[text.index("# Examples") :].splitlines()[1:]
    shown = [line[2:] for line in lines if re.match(r"# ([a-z_]+:|  )", line)]
    return yaml.safe_load("\n".join(shown))


def test_example_file_shows_valid_values_and_no_defaults(tmp_path):
    shown = example_file_settings()
    assert len(shown) >= 10
    f = tmp_path / "settings.yml"
    f.write_text(yaml.safe_dump(shown))
    settings = load_settings({"GPUHUB_SETTINGS_FILE": str(f)})
    for name in shown:
        assert settings[name] != SCHEMA[name].default, f"settings.example.yml shows the default of {name}"


def test_example_and_test_settings_files_load():
    for path in ("settings.example.yml", "tests/integration/settings.yml"):
        load_settings({"GPUHUB_SETTINGS_FILE": str(ROOT / path)})
