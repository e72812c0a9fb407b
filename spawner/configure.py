"""The hub's traitlets configuration, from the platform's settings.

``apply(settings, c)`` is the one mapping from the settings schema
(``spawner/settings.py``) onto traits, as TLJH's ``configurer.apply_config``:
``jupyterhub_config.py`` loads the settings, calls it, then loads the site's
``jupyterhub_config.d/*.py``. Every setting is used here
(tests/unit/test_configure.py checks it, with each setting's example).
"""

import os
from collections.abc import Mapping
from typing import Any

from tornado.httpserver import HTTPServer
from traitlets.config import Config

from . import gpureclaim, idlenotices
from .auth import TEMPLATES
from .auth.oauth import CLASSES
from .culling import culler_service, profile_timeouts
from .hubsecrets import (
    COOKIE_SECRET,
    CRYPT_KEY,
    HUBCTL_TOKEN,
    INITIAL_ADMIN_PASSWORD,
    METRICS_TOKEN,
    OAUTH_CLIENT_SECRET,
    PROXY_TOKEN,
    ensure_secret,
    read_secret,
    secret_path,
)
from .names import WORKSPACE_VOLUME
from .profiles import DEFAULT_PROFILES, ProfileError, normalize_profiles
from .providers import GROUP_PROVIDERS, NATIVE
from .settings import SettingsError
from .sizes import size_bytes

# Requests to the hub (forms, REST) are small; tornado's default 100 MB cap lets
# one request echo megabytes into pages and logs. Notebook traffic goes to user
# servers. Tornado has no trait for it: it is a default of every HTTPServer.
MAX_BODY_SIZE = 256 * 1024

# What the admin CLI (spawner/hubctl) may do with its service token.
HUBCTL_SCOPES = ["admin:users", "admin:servers", "admin:groups", "tokens", "read:hub"]
# What jupyterhub-idle-culler needs to find idle servers and stop them.
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def apply(settings: Mapping[str, Any], c: Config) -> None:
    """Set on ``c`` what ``settings`` (from ``load_settings``) decide, with the platform's fixed choices.

    Creates the hub's secrets (mode 600) under ``settings["data_dir"]`` where
    they are missing, and caps request bodies of this process's HTTP servers.
    """
    _hub(settings, c)
    _login(settings, c)
    _services(settings, c)
    _spawner(settings, c)
    _operating(settings, c)


def _hub(s: Mapping[str, Any], c: Config) -> None:
    data = s["data_dir"]
    c.JupyterHub.bind_url = "http://0.0.0.0:8000"
    c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
    c.JupyterHub.hub_connect_url = f"http://{s['hub_connect_host']}:8081"
    c.JupyterHub.db_url = f"sqlite:///{data}/jupyterhub.sqlite"
    c.JupyterHub.cookie_secret_file = secret_path(data, COOKIE_SECRET)
    c.ConfigurableHTTPProxy.auth_token = ensure_secret(secret_path(data, PROXY_TOKEN))
    c.ConfigurableHTTPProxy.pid_file = f"{data}/jupyterhub-proxy.pid"
    c.JupyterHub.cleanup_servers = False  # hub restarts leave user servers running
    c.JupyterHub.log_level = s["log_level"].upper()
    # SameSite=Lax on the login, session and _xsrf cookies: a cross-site POST
    # carries no hub credentials (JupyterHub passes cookie_options to all three).
    c.JupyterHub.tornado_settings = {"cookie_options": {"samesite": "Lax"}}
    if s["public_url"]:
        c.JupyterHub.public_url = s["public_url"]
    HTTPServer.configure(None, max_body_size=MAX_BODY_SIZE)


def _login(s: Mapping[str, Any], c: Config) -> None:
    auth = s["auth"]
    c.JupyterHub.template_paths = [TEMPLATES]  # ours first: NativeAuthenticator adds its own after
    c.Authenticator.admin_users = set(s["admin_users"])
    if "allowed_users" in auth:
        c.Authenticator.allowed_users = set(auth["allowed_users"])
    if "blocked_users" in auth:
        c.Authenticator.blocked_users = set(auth["blocked_users"])
    if auth["provider"] == NATIVE:
        _native(s, c)
    else:
        _provider(s, c)


def _native(s: Mapping[str, Any], c: Config) -> None:
    """NativeAuthenticator: admins approve sign-ups; an invitation claims an account an admin made."""
    c.JupyterHub.authenticator_class = "spawner.auth.PlatformAuthenticator"
    # approval (sign-up) or an invitation is the gate, unless only some names may sign in
    c.Authenticator.allow_all = "allowed_users" not in s["auth"]
    c.PlatformAuthenticator.initial_admin = s["admin_users"][0] if s["admin_users"] else ""
    c.PlatformAuthenticator.initial_admin_password_file = secret_path(s["data_dir"], INITIAL_ADMIN_PASSWORD)
    c.NativeAuthenticator.minimum_password_length = 10
    c.NativeAuthenticator.check_common_password = True


def client_secret(data_dir: str, environ: Mapping[str, str] = os.environ) -> str:
    """The OAuth client secret: oauthenticator's own variable, else the hub's secrets file."""
    secret = environ.get("OAUTH_CLIENT_SECRET", "").strip() or read_secret(secret_path(data_dir, OAUTH_CLIENT_SECRET))
    if not secret:
        raise SettingsError(
            f"auth: the provider's client secret is missing: run scripts/hub-secret {OAUTH_CLIENT_SECRET} "
            "(kept mode 600 in the hub's data volume) or set OAUTH_CLIENT_SECRET in .env"
        )
    return secret


def _provider(s: Mapping[str, Any], c: Config) -> None:
    """oauthenticator: the provider signs people in; its groups become the hub's at every login."""
    cls = CLASSES[s["auth"]["provider"]]
    c.JupyterHub.authenticator_class = cls
    oauth_traits(s["auth"], s["public_url"], c[cls.__name__])
    c[cls.__name__].client_secret = client_secret(s["data_dir"])
    # auth_state keeps the provider's tokens, so that groups can be read again
    # (at each spawn, and after refresh_age) without a new sign-in.
    c.Authenticator.enable_auth_state = True
    c.CryptKeeper.keys = [ensure_secret(secret_path(s["data_dir"], CRYPT_KEY))]


def oauth_traits(auth: Mapping[str, Any], public_url: str, t: Config) -> None:
    """The provider's traits that hold no secret, set on ``t`` (its class's section)."""
    t.client_id = auth["client_id"]
    if public_url:  # else each request's own address, as the browser (or its tunnel) sees the hub
        t.oauth_callback_url = public_url + "hub/oauth_callback"
    if "scopes" in auth:
        t.scope = auth["scopes"]
    t.refresh_pre_spawn = True
    t.auth_refresh_age = auth["refresh_age"]
    if auth["provider"] in GROUP_PROVIDERS:
        t.manage_groups = True
        t.allowed_groups = set(auth.get("allowed_groups", ()))
        t.admin_groups = set(auth.get("admin_groups", ()))
    PROVIDER_FIELDS[auth["provider"]](auth, t)


def _oidc(auth: Mapping[str, Any], t: Config) -> None:
    t.authorize_url, t.token_url, t.userdata_url = auth["authorize_url"], auth["token_url"], auth["userdata_url"]
    t.issuer = auth.get("issuer", "")
    t.username_claim = auth["username_claim"]
    # auth_state holds the userinfo answer under "oauth_user"; a dotted claim reaches nested ones
    t.auth_state_groups_key = f"oauth_user.{auth['groups_claim']}"
    if "login_service" in auth:
        t.login_service = auth["login_service"]


def _github(auth: Mapping[str, Any], t: Config) -> None:
    t.allowed_organizations = set(auth.get("organizations", ()))
    t.populate_teams_in_auth_state = True  # teams ("org:team") are the groups
    if "github_url" in auth:
        t.github_url = auth["github_url"]


def _gitlab(auth: Mapping[str, Any], t: Config) -> None:
    t.allowed_gitlab_groups = set(auth.get("gitlab_groups", ()))
    if "gitlab_url" in auth:
        t.gitlab_url = auth["gitlab_url"]


def _google(auth: Mapping[str, Any], t: Config) -> None:
    if "hosted_domain" in auth:
        t.hosted_domain = auth["hosted_domain"]
        # the domain is the gate (oauthenticator checks it before anything else),
        # unless only some of its users are named
        t.allow_all = "allowed_users" not in auth


PROVIDER_FIELDS = {"oidc": _oidc, "github": _github, "gitlab": _gitlab, "google": _google}


def _services(s: Mapping[str, Any], c: Config) -> None:
    """The admin CLI and, where idle_timeout or a profile's is set, the idle culler: each with a scoped role."""
    token = ensure_secret(secret_path(s["data_dir"], HUBCTL_TOKEN))
    services = [{"name": "hubctl", "api_token": token}]
    roles = [{"name": "hubctl", "services": ["hubctl"], "scopes": HUBCTL_SCOPES}]
    try:  # the spawner checks each override key too (GPUDockerSpawner.check_config)
        configured = normalize_profiles(s["profiles"] or DEFAULT_PROFILES)
    except ProfileError as e:
        raise SettingsError(f"profiles: {e}") from None
    # culling stops the server, which returns its GPUs; profiles may set their own timeout
    culler = culler_service(s["idle_timeout"], profile_timeouts(configured), s["data_dir"])
    if culler:
        services.append(culler)
        roles.append({"name": "idle-culler", "services": ["idle-culler"], "scopes": CULLER_SCOPES})
    reclaim = gpureclaim.service(s)  # GPU-idle reclaim, and its notices on the home page
    if reclaim:
        services.append(reclaim)
        roles.append({"name": "gpu-reclaim", "services": ["gpu-reclaim"], "scopes": gpureclaim.RECLAIM_SCOPES})
        c.JupyterHub.template_vars = {"announcement_home": idlenotices.HomeAnnouncement(s["data_dir"])}
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def _spawner(s: Mapping[str, Any], c: Config) -> None:
    """One container per user; GPUs leased from Docker labels."""
    c.JupyterHub.spawner_class = "gpudocker"
    spawner = c.GPUDockerSpawner
    spawner.prefix = s["prefix"]
    spawner.network_name = s["network"]
    spawner.use_internal_ip = True
    spawner.image = s["image"]
    spawner.allowed_images = s["allowed_images"]  # the configured image is always allowed
    spawner.pull_policy = s["pull_policy"]
    spawner.mem_limit = s["mem_limit"]
    spawner.cpu_limit = s["cpu_limit"]
    spawner.shm_size = s["shm_size"]
    spawner.shared_data = s["shared_data"]
    spawner.gpu_ids = s["gpus"]
    spawner.gpu_mode = s["gpu_mode"]
    spawner.gpu_runtime = s["gpu_runtime"]
    spawner.isolate_servers = s["isolate_servers"]
    spawner.gpu_quota = s["gpu_quota"]
    spawner.gpu_group_quotas = s["gpu_group_quotas"]
    if s["profiles"]:  # else the spawner's built-in set
        spawner.profile_list = s["profiles"]
    spawner.workspace_soft_limit = s["workspace_soft_limit"]
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60
    _swarm(s, spawner, c)


# Settings of a single host's engine that a Swarm service has no equivalent for.
DOCKER_ONLY = ("gpu_ids", "gpu_mode", "gpu_runtime", "isolate_servers", "workspace_soft_limit")


def _swarm(s: Mapping[str, Any], docker: Config, c: Config) -> None:
    """The same settings on the Swarm spawner (used where engine is swarm); its GPUs are the
    nodes' generic resources."""
    if s["engine"] == "swarm":
        c.JupyterHub.spawner_class = "gpuswarm"
    for key, value in docker.items():
        if key not in DOCKER_ONLY:
            c.GPUSwarmSpawner[key] = value
    if s["workspace_nfs"]:  # shared storage: a server may land on any node
        host, path = s["workspace_nfs"].split(":", 1)
        c.GPUSwarmSpawner.volume_driver = "local"
        c.GPUSwarmSpawner.volume_driver_options = {
            "type": "nfs",
            "o": f"addr={host},rw,nfsvers=4",
            "device": f":{path}/{WORKSPACE_VOLUME}",  # rendered per user by the spawner
        }


def _operating(s: Mapping[str, Any], c: Config) -> None:
    """GPU-hours ledger (a service of its own), metrics behind read:metrics, the admin GPU page."""
    # imported here: the page module needs JupyterHub's handlers, which the hub has and hubctl need not load
    from . import gpupage, metrics, usage

    ledger = os.path.join(s["data_dir"], usage.LEDGER_FILE)
    c.JupyterHub.authenticate_prometheus = True  # /hub/metrics answers only tokens with read:metrics
    watch = ["python3", "-m", "spawner.usage", f"--db={ledger}", f"--prefix={s['prefix']}"]
    token = ensure_secret(secret_path(s["data_dir"], METRICS_TOKEN))
    c.JupyterHub.services = [
        *c.JupyterHub.services,
        {"name": "usage-ledger", "command": watch},
        {"name": "metrics", "api_token": token},
    ]
    c.JupyterHub.load_roles = [
        *c.JupyterHub.load_roles,
        {"name": "metrics", "services": ["metrics"], "scopes": ["read:metrics"]},
    ]
    soft_limit = size_bytes(s["workspace_soft_limit"]) if s["workspace_soft_limit"] else 0
    collector = metrics.install(s["prefix"], s["gpus"], s["data_dir"], soft_limit)
    # JupyterHub 5 still honours extra_handlers (it logs that services are preferred):
    # the page belongs in the hub, beside /hub/admin, with its templates and login
    c.JupyterHub.extra_handlers = [(r"/gpus", gpupage.GpusHandler, {"collector": collector, "ledger": ledger})]
