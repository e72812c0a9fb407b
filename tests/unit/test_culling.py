"""Per-profile idle timeouts: the profile key, the culler service the hub runs, and
the hook jupyterhub-idle-culler 2.x really loads from its config file."""

import json
from datetime import timedelta

import pytest
from jupyterhub_idle_culler import IdleCuller
from traitlets.config import Config

from spawner import culltally
from spawner.configure import apply
from spawner.culling import CONFIG_FILE, TIMEOUTS_ENV, arbiter, culler_service, profile_timeouts
from spawner.profiles import ProfileError, normalize_profiles
from spawner.settings import SettingsError, load_settings

PROFILES = [
    {"display_name": "CPU", "slug": "cpu", "idle_timeout": 8 * 3600},
    {"display_name": "1 GPU", "slug": "gpu-1", "idle_timeout": 3600, "spawner_override": {"gpus": 1}},
    {"display_name": "Long run", "slug": "long", "idle_timeout": 0},
    {"display_name": "Plain", "slug": "plain"},
]


def server(profile, **extra):
    return {"user_options": {"profile": profile} if profile is not None else {}, **extra}


def test_profile_timeouts_name_only_profiles_that_set_one():
    assert profile_timeouts(normalize_profiles(PROFILES)) == {"cpu": 28800, "gpu-1": 3600, "long": 0}


@pytest.mark.parametrize("bad", [-1, "1h", 1.5, True, [60]])
def test_a_bad_idle_timeout_is_refused_naming_the_profile(bad):
    with pytest.raises(ProfileError, match=r"Profile 'x': idle_timeout must be whole seconds"):
        normalize_profiles([{"display_name": "X", "slug": "x", "idle_timeout": bad}])


def test_a_bad_idle_timeout_in_the_settings_stops_the_hub(tmp_path):
    settings = load_settings({"GPUHUB_DATA_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="profiles: Profile 'x': idle_timeout"):
        apply({**settings, "profiles": [{"display_name": "X", "slug": "x", "idle_timeout": "soon"}]}, Config())


@pytest.mark.parametrize(
    "profile, inactive, culled",
    [
        ("gpu-1", 3599, False),
        ("gpu-1", 3600, True),
        ("cpu", 3600, False),
        ("cpu", 28800, True),
        ("long", 10**7, False),  # 0: never
        ("plain", 7199, False),  # no timeout of its own: the site's
        ("plain", 7200, True),
        (None, 7200, True),  # no profile chosen (REST without one)
        ("unknown-slug", 7200, True),
    ],
)
def test_the_arbiter_uses_the_servers_profile(profile, inactive, culled, tmp_path):
    tally = tmp_path / "culls.json"
    decide = arbiter(7200, profile_timeouts(normalize_profiles(PROFILES)), tally)
    assert decide(inactive=timedelta(seconds=inactive), inactive_limit=28800, server=server(profile)) is culled
    assert culltally.read(tally) == ({"idle": 1} if culled else {})  # what /hub/metrics reports


def test_a_site_timeout_of_zero_keeps_profiles_without_one(tmp_path):
    decide = arbiter(0, {"gpu-1": 60}, tmp_path / "culls.json")
    assert decide(inactive=timedelta(days=30), inactive_limit=60, server=server("plain")) is False
    assert decide(inactive=timedelta(seconds=60), inactive_limit=60, server=server("gpu-1")) is True


def test_no_culler_where_nothing_is_ever_culled():
    assert culler_service(0, {}, "/data") is None
    assert culler_service(0, {"long": 0}, "/data") is None


def test_the_culler_gets_the_longest_timeout_and_polls_for_the_shortest():
    service = culler_service(0, {"gpu-1": 3600, "cpu": 28800}, "/data")
    assert service["command"][3:5] == ["--timeout=28800", "--cull-every=300"]
    assert culler_service(7200, {"gpu-1": 20}, "/data")["command"][3:5] == ["--timeout=7200", "--cull-every=5"]
    given = json.loads(service["environment"][TIMEOUTS_ENV])
    assert given == {"default": 0, "profiles": {"gpu-1": 3600, "cpu": 28800}, "tally": "/data/culls.json"}


def test_the_hub_runs_the_culler_with_its_hook_for_the_configured_profiles(tmp_path):
    settings = {**load_settings({"GPUHUB_DATA_DIR": str(tmp_path)}), "idle_timeout": 0, "profiles": PROFILES}
    c = Config()
    apply(settings, c)
    [culler] = [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    assert f"--config={CONFIG_FILE}" in culler["command"]
    assert json.loads(culler["environment"][TIMEOUTS_ENV])["profiles"] == {"cpu": 28800, "gpu-1": 3600, "long": 0}


def test_the_idle_culler_loads_the_hook_from_its_config_file(monkeypatch, tmp_path):
    """jupyterhub-idle-culler's own config loading (what --config does at its start)."""
    tally = tmp_path / "culls.json"
    monkeypatch.setenv(TIMEOUTS_ENV, json.dumps({"default": 0, "profiles": {"gpu-1": 60}, "tally": str(tally)}))
    culler = IdleCuller()
    culler.load_config_file(CONFIG_FILE)
    hook = culler.cull_arbiter_hook
    assert hook(inactive=timedelta(seconds=61), inactive_limit=600, server=server("gpu-1")) is True
    assert hook(inactive=timedelta(days=1), inactive_limit=600, server=server("cpu")) is False
    assert culltally.read(tally) == {"idle": 1}
