"""spawner.configure.apply: the settings mapped onto a bare traitlets Config,
and jupyterhub_config.py, which calls it and then loads the site's files."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.httpserver import HTTPServer
from traitlets import TraitError
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from spawner.configure import CULLER_SCOPES, HUBCTL_SCOPES, MAX_BODY_SIZE, apply
from spawner.settings import SCHEMA, load_settings

ROOT = Path(__file__).resolve().parents[2]
OPERATING = ["usage-ledger", "metrics"]  # services of the GPU-hours ledger and of Prometheus (issue 11)

# Settings that land unchanged on one trait each.
DIRECT = {
    "prefix": "GPUDockerSpawner.prefix",
    "network": "GPUDockerSpawner.network_name",
    "image": "GPUDockerSpawner.image",
    "allowed_images": "GPUDockerSpawner.allowed_images",
    "pull_policy": "GPUDockerSpawner.pull_policy",
    "mem_limit": "GPUDockerSpawner.mem_limit",
    "cpu_limit": "GPUDockerSpawner.cpu_limit",
    "shm_size": "GPUDockerSpawner.shm_size",
    "shared_data": "GPUDockerSpawner.shared_data",
    "gpus": "GPUDockerSpawner.gpu_ids",
    "gpu_mode": "GPUDockerSpawner.gpu_mode",
    "gpu_runtime": "GPUDockerSpawner.gpu_runtime",
    "gpu_quota": "GPUDockerSpawner.gpu_quota",
    "gpu_group_quotas": "GPUDockerSpawner.gpu_group_quotas",
    "isolate_servers": "GPUDockerSpawner.isolate_servers",
    "profiles": "GPUDockerSpawner.profile_list",
}


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def defaults(data_dir):
    """The schema's defaults, with the hub's data (its secrets) under a temporary directory."""
    return load_settings({"GPUHUB_DATA_DIR": str(data_dir)})


def configured(settings) -> Config:
    c = Config()
    apply(settings, c)
    return c


def trait(c: Config, path: str):
    section, name = path.split(".")
    return c[section][name]


def flat(c: Config) -> dict:
    return {f"{section}.{name}": value for section, traits in c.items() for name, value in traits.items()}


def example(name: str, tmp_path: Path):
    """The schema's example value of ``name``, parsed; data_dir kept under tmp_path."""
    if name == "data_dir":
        return str(tmp_path / "elsewhere")
    return SCHEMA[name].parse(SCHEMA[name].example)


def test_each_direct_setting_lands_on_its_trait(defaults, tmp_path):
    settings = {**defaults, **{name: example(name, tmp_path) for name in DIRECT}}
    c = configured(settings)
    for name, path in DIRECT.items():
        assert trait(c, path) == settings[name], f"{name} -> {path}"


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_apply_uses_every_setting(name, defaults, tmp_path, monkeypatch):
    """Changing any one setting changes the configuration: apply ignores none."""
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "s3cret")  # the auth example names a provider
    changed = configured({**defaults, name: example(name, tmp_path)})
    assert flat(changed) != flat(configured(defaults)), f"apply() ignores the setting {name!r}"


def test_hub_connect_host_names_the_hub_in_its_url(defaults):
    c = configured({**defaults, "hub_connect_host": "jupyterhub"})
    assert c.JupyterHub.hub_connect_url == "http://jupyterhub:8081"


def test_hub_state_and_secrets_live_under_data_dir(defaults, data_dir):
    c = configured(defaults)
    assert c.JupyterHub.db_url == f"sqlite:///{data_dir}/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == str(data_dir / "secrets/cookie_secret")
    assert c.ConfigurableHTTPProxy.pid_file == str(data_dir / "jupyterhub-proxy.pid")
    assert c.PlatformAuthenticator.initial_admin_password_file == str(data_dir / "secrets/initial_admin_password")


def test_secrets_are_created_once_mode_600_and_nowhere_else(defaults, data_dir, tmp_path):
    c = configured(defaults)
    secrets = data_dir / "secrets"
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "data",
        "hubctl_token",
        "metrics_token",
        "proxy_token",
        "secrets",
    ]
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("proxy_token", "hubctl_token", "metrics_token"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600
    assert c.ConfigurableHTTPProxy.auth_token == (secrets / "proxy_token").read_text().strip()
    [hubctl] = [s for s in c.JupyterHub.services if s["name"] == "hubctl"]
    assert hubctl["api_token"] == (secrets / "hubctl_token").read_text().strip()
    again = configured(defaults)  # a hub restart keeps them
    assert again.ConfigurableHTTPProxy.auth_token == c.ConfigurableHTTPProxy.auth_token
    assert again.JupyterHub.services == c.JupyterHub.services


def test_admin_users_are_admins_and_the_first_is_created_at_start(defaults):
    c = configured({**defaults, "admin_users": ["alice", "bob"]})
    assert c.Authenticator.admin_users == {"alice", "bob"}
    assert c.PlatformAuthenticator.initial_admin == "alice"
    assert configured({**defaults, "admin_users": []}).PlatformAuthenticator.initial_admin == ""


def test_log_level_is_jupyterhubs_name_for_it(defaults):
    assert configured({**defaults, "log_level": "debug"}).JupyterHub.log_level == "DEBUG"


def test_empty_profiles_leave_the_built_in_set(defaults):
    assert "profile_list" not in configured(defaults).GPUDockerSpawner


def test_no_idle_culler_service_or_role_without_idle_timeout(defaults):
    c = configured({**defaults, "idle_timeout": 0, "gpu_idle_timeout": 0})
    assert [s["name"] for s in c.JupyterHub.services] == ["hubctl", *OPERATING]
    assert c.JupyterHub.load_roles[0] == {"name": "hubctl", "services": ["hubctl"], "scopes": HUBCTL_SCOPES}
    assert "idle-culler" not in [r["name"] for r in c.JupyterHub.load_roles]


@pytest.mark.parametrize("timeout, every", [(8, 5), (100, 25), (7200, 300)])
def test_idle_culler_service_and_its_scoped_role(defaults, timeout, every):
    c = configured({**defaults, "idle_timeout": timeout, "gpu_idle_timeout": 0})
    [culler] = c.JupyterHub.services[1:-2]
    assert culler["name"] == "idle-culler"
    assert culler["command"][:5] == [
        "python3", "-m", "jupyterhub_idle_culler", f"--timeout={timeout}", f"--cull-every={every}"
    ]  # fmt: skip
    role = {"name": "idle-culler", "services": ["idle-culler"], "scopes": CULLER_SCOPES}
    assert c.JupyterHub.load_roles[1:-1] == [role]


def test_request_bodies_are_capped(defaults):
    configured(defaults)
    assert HTTPServer(lambda request: None).conn_params.max_body_size == MAX_BODY_SIZE


def _configurables():
    from jupyterhub.app import JupyterHub
    from jupyterhub.auth import Authenticator
    from jupyterhub.proxy import ConfigurableHTTPProxy
    from jupyterhub.spawner import Spawner
    from nativeauthenticator import NativeAuthenticator

    from spawner.auth import PlatformAuthenticator
    from spawner.spawner import GPUDockerSpawner
    from spawner.swarm import GPUSwarmSpawner

    classes = [JupyterHub, ConfigurableHTTPProxy, Authenticator, NativeAuthenticator, PlatformAuthenticator]
    return {cls.__name__: cls for cls in [*classes, Spawner, GPUDockerSpawner, GPUSwarmSpawner]}


def test_every_configured_trait_exists(defaults, tmp_path):
    """JupyterHub only logs a warning for an unknown name: a renamed trait must fail here."""
    classes = _configurables()
    settings = {**defaults, **{name: example(name, tmp_path) for name in DIRECT}}
    for section, traits in configured(settings).items():
        assert section in classes, f"c.{section}: no such configurable"
        known = classes[section].class_trait_names(config=True)
        assert not set(traits) - set(known), f"c.{section}: unknown traits {sorted(set(traits) - set(known))}"


def test_configured_values_are_accepted_by_the_traits(defaults, tmp_path):
    from jupyterhub import orm

    classes = _configurables()
    settings = {**defaults, **{name: example(name, tmp_path) for name in DIRECT}, "idle_timeout": 60}
    c = configured(settings)
    hub = classes["JupyterHub"](config=c)
    assert hub.spawner_class is classes["GPUDockerSpawner"]
    assert hub.authenticator_class is classes["PlatformAuthenticator"]
    assert [s["name"] for s in hub.services] == ["hubctl", "idle-culler", "gpu-reclaim", *OPERATING]
    proxy = classes["ConfigurableHTTPProxy"](config=c)
    assert proxy.auth_token == c.ConfigurableHTTPProxy.auth_token
    auth = classes["PlatformAuthenticator"](config=c, db=orm.new_session_factory("sqlite://")())
    assert auth.initial_admin == settings["admin_users"][0] and auth.minimum_password_length == 10
    spawner = classes["GPUDockerSpawner"](config=c, user=SimpleNamespace(name="alice", url="/user/alice/"))
    assert spawner.gpu_ids == settings["gpus"] and spawner.shm_size == settings["shm_size"]
    # The spawner keeps profile_list checked and filled in (profiles.normalize_profiles).
    assert [{k: p[k] for k in given} for p, given in zip(spawner.profile_list, settings["profiles"], strict=True)] == (
        settings["profiles"]
    )
    assert spawner.isolate_servers == settings["isolate_servers"]


# -- jupyterhub_config.py ------------------------------------------------------


@pytest.fixture
def hub_dir(tmp_path, monkeypatch, data_dir):
    """jupyterhub_config.py beside a jupyterhub_config.d/ of two site files, with
    the environment of the hub container (no GPUHUB_* but its data dir)."""
    for name in [name for name in os.environ if name.startswith("GPUHUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GPUHUB_DATA_DIR", str(data_dir))
    shutil.copy(ROOT / "jupyterhub_config.py", tmp_path)
    site = tmp_path / "jupyterhub_config.d"
    site.mkdir()
    (site / "20-b.py").write_text("c.Site.file = __file__\nc.Site.sees_a = 'mine' in dir()\nc.Site.last = 'b'\n")
    (site / "10-a.py").write_text("mine = 1\nc.Site.last = 'a'\nc.JupyterHub.services.append({'name': 'site'})\n")
    return tmp_path


def test_jupyterhub_config_applies_the_settings_then_the_site_files(hub_dir, defaults):
    c = PyFileConfigLoader("jupyterhub_config.py", str(hub_dir)).load_config()
    # The site's files, in name order, each merged over what came before.
    assert c.pop("Site") == {"file": str(hub_dir / "jupyterhub_config.d/20-b.py"), "sees_a": False, "last": "b"}
    assert c.JupyterHub.services.pop() == {"name": "site"}
    # The rest is exactly what apply() makes of the settings.
    assert flat(c) == flat(configured(defaults))


def test_config_modules_for_scripts_do_not_import_jupyterhub():
    """hubctl and scripts import the settings and secrets modules, in the hub container or anywhere."""
    code = (
        "import sys, spawner.settings, spawner.hubsecrets;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jupyterhub', 'dockerspawner', 'docker', "
        "'nativeauthenticator', 'tornado'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_broken_profile_stops_the_hub_at_start_naming_profile_and_key(hub_dir, monkeypatch):
    (hub_dir / "jupyterhub_config.d/30-profiles.py").write_text(
        "c.GPUDockerSpawner.profile_list = [{'display_name': 'Big', 'slug': 'big',"
        " 'spawner_override': {'shm_sise': '8G'}}]\n"
    )
    with pytest.raises(TraitError, match="'big'.*shm_sise"):
        PyFileConfigLoader("jupyterhub_config.py", str(hub_dir)).load_config()
