"""The auth setting mapped onto oauthenticator's classes and traits. GitHub,
GitLab and Google cannot be reached here: these checks are all there is for
them (the OIDC path also runs for real against a provider, tests/oidc)."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.crypto import CryptKeeper
from traitlets.config import Config

from spawner.auth.oauth import CLASSES, GitHubAuthenticator, github_teams
from spawner.configure import apply, client_secret
from spawner.providers import parse_auth
from spawner.settings import SettingsError, load_settings

from .test_providers import MINIMAL

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "from-the-environment")
    return load_settings({"GPUHUB_DATA_DIR": str(tmp_path / "data")})


def authenticator(settings, auth: dict):
    """The configured authenticator class, instantiated as the hub would."""
    c = Config()
    apply({**settings, "auth": parse_auth(auth)}, c)
    cls = JupyterHub(config=c).authenticator_class
    return cls(config=c, db=orm.new_session_factory("sqlite://")()), c


@pytest.mark.parametrize("provider", ["oidc", "github", "gitlab", "google"])
def test_each_provider_is_its_platform_class_with_secret_state_and_refresh(settings, provider):
    auth, c = authenticator(settings, {**MINIMAL[provider], "allowed_users": ["ada"], "blocked_users": ["eve"]})
    assert type(auth) is CLASSES[provider]
    assert auth.client_id == MINIMAL[provider]["client_id"]
    assert auth.client_secret == "from-the-environment"
    assert auth.enable_auth_state and auth.refresh_pre_spawn and auth.auth_refresh_age == 300
    assert auth.allowed_users == {"ada"} and auth.blocked_users == {"eve"}
    assert auth.admin_users == set(settings["admin_users"])
    assert CryptKeeper(config=c).keys and len(CryptKeeper(config=c).keys[0]) == 32
    # guessed from each request (the browser's own address, tunnel or not) unless public_url is set
    assert auth.oauth_callback_url == ""
    # the platform's one username rule
    assert auth.normalize_username("Ａda") == "ada" and not auth.validate_username("ada\n")


async def test_oidc_endpoints_claims_groups_and_issuer(settings):
    auth, _ = authenticator(settings, {**MINIMAL["oidc"], "admin_groups": ["admins"], "issuer": "http://idp:9/"})
    assert (auth.authorize_url, auth.token_url, auth.userdata_url) == (
        "https://sso.example.org/auth",
        "http://idp:8080/token",
        "http://idp:8080/me",
    )
    assert auth.scope == ["openid", "profile", "groups"] and auth.username_claim == "preferred_username"
    assert auth.manage_groups and auth.allowed_groups == {"lab"} and auth.admin_groups == {"admins"}
    assert await auth.get_user_groups({"oauth_user": {"groups": ["lab", "bigjobs"]}}) == {"lab", "bigjobs"}
    assert auth.issuer == "http://idp:9/"
    nested, _ = authenticator(settings, {**MINIMAL["oidc"], "groups_claim": "realm_access.roles"})
    assert await nested.get_user_groups({"oauth_user": {"realm_access": {"roles": ["lab"]}}}) == {"lab"}


async def test_github_organizations_gate_and_teams_are_groups(settings):
    auth, _ = authenticator(settings, {**MINIMAL["github"], "allowed_groups": ["mylab:gpu"]})
    assert auth.allowed_organizations == {"mylab"} and auth.populate_teams_in_auth_state
    assert "read:org" in auth.scope and auth.manage_groups and auth.allowed_groups == {"mylab:gpu"}
    teams = {"teams": [{"organization": {"login": "mylab"}, "slug": "gpu"}]}
    assert await auth.get_user_groups(teams) == {"mylab:gpu"} and github_teams({}) == []
    enterprise, _ = authenticator(settings, {**MINIMAL["github"], "github_url": "https://github.example.org"})
    assert enterprise.github_api == "https://github.example.org/api/v3"
    assert isinstance(enterprise, GitHubAuthenticator)


def test_gitlab_groups_and_self_hosted_url(settings):
    auth, _ = authenticator(settings, {**MINIMAL["gitlab"], "gitlab_url": "https://gitlab.example.org"})
    assert auth.allowed_gitlab_groups == {"mylab"} and not auth.manage_groups
    assert auth.gitlab_api.startswith("https://gitlab.example.org/api/v")


def test_google_hosted_domain_gates_unless_users_are_named(settings):
    auth, _ = authenticator(settings, MINIMAL["google"])
    assert auth.hosted_domain == ["example.org"] and auth.allow_all
    named, _ = authenticator(settings, {**MINIMAL["google"], "allowed_users": ["ada@example.org"]})
    assert not named.allow_all


def test_public_url_fixes_the_callback_and_the_hubs_own_url(settings):
    c = Config()
    apply({**settings, "public_url": "https://gpu.example.org/", "auth": parse_auth(MINIMAL["oidc"])}, c)
    assert c.OIDCAuthenticator.oauth_callback_url == "https://gpu.example.org/hub/oauth_callback"
    assert c.JupyterHub.public_url == "https://gpu.example.org/"


def test_native_allowed_and_blocked_users(settings):
    auth, c = authenticator(settings, {"provider": "native", "allowed_users": ["ada"], "blocked_users": ["eve"]})
    assert auth.allowed_users == {"ada"} and auth.blocked_users == {"eve"} and not auth.allow_all
    assert "enable_auth_state" not in c.Authenticator


def test_client_secret_environment_wins_over_the_file_and_none_is_a_clear_error(tmp_path):
    data = str(tmp_path)
    with pytest.raises(SettingsError, match="client secret is missing: run scripts/hub-secret oauth_client_secret"):
        client_secret(data, {})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/oauth_client_secret").write_text("from-the-file\n")
    assert client_secret(data, {}) == "from-the-file"
    assert client_secret(data, {"OAUTH_CLIENT_SECRET": "from-env"}) == "from-env"
    assert client_secret(data, {"OAUTH_CLIENT_SECRET": ""}) == "from-the-file"  # compose passes it empty


def test_crypt_key_is_created_once_mode_600(settings, tmp_path):
    authenticator(settings, MINIMAL["oidc"])
    key = tmp_path / "data/secrets/crypt_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_text()
    authenticator(settings, MINIMAL["oidc"])
    assert key.read_text() == first


def test_a_bad_auth_setting_stops_the_hub_with_one_line(tmp_path, monkeypatch):
    """The real jupyterhub command on jupyterhub_config.py: one line naming the field, no hub."""
    for name in [name for name in os.environ if name.startswith("GPUHUB_")]:
        monkeypatch.delenv(name)
    shutil.copy(ROOT / "jupyterhub_config.py", tmp_path)
    (tmp_path / "jupyterhub_config.d").mkdir()
    env = {**os.environ, "GPUHUB_DATA_DIR": str(tmp_path / "data"), "GPUHUB_AUTH": "{provider: oidc, client_id: x}"}
    jupyterhub = Path(sys.executable).with_name("jupyterhub")
    command = [str(jupyterhub), "-f", "jupyterhub_config.py"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "gpuhub: cannot start: GPUHUB_AUTH: bad value for 'auth': '{provider: oidc, client_id: x}' "
        "(auth.authorize_url is missing: provider oidc needs it (authorization endpoint, as the browser reaches it))"
    ]
    assert not (tmp_path / "data").exists()  # nothing half-made


def test_first_admin_prints_the_callback_url_to_register(settings):
    from spawner.hubctl.__main__ import cmd_first_admin

    api = SimpleNamespace(settings={**settings, "auth": parse_auth({**MINIMAL["oidc"], "admin_groups": ["admins"]})})
    out = cmd_first_admin(api, SimpleNamespace(port=18123))
    assert "http://127.0.0.1:18123/hub/oauth_callback" in out and "client 'gpuhub'" in out
    assert "group admins" in out and "ssh -L 18123:127.0.0.1:18123" in out
    api.settings["public_url"] = "https://gpu.example.org/"
    assert "https://gpu.example.org/hub/oauth_callback" in cmd_first_admin(api, SimpleNamespace(port=8000))
