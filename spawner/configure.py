"""The hub's traitlets configuration, from the platform's settings.

``apply(settings, c)`` is the one mapping from the settings schema
(``spawner/settings.py``) onto traits, as TLJH's ``configurer.apply_config``:
``jupyterhub_config.py`` loads the settings, calls it, then loads the site's
``jupyterhub_config.d/*.py``. Every setting is used here
(tests/unit/test_configure.py checks it, with each setting's example).
"""

from collections.abc import Mapping
from typing import Any

from tornado.httpserver import HTTPServer
from traitlets.config import Config

from .auth import TEMPLATES
from .hubsecrets import COOKIE_SECRET, HUBCTL_TOKEN, INITIAL_ADMIN_PASSWORD, PROXY_TOKEN, ensure_secret, secret_path

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
    HTTPServer.configure(None, max_body_size=MAX_BODY_SIZE)


def _login(s: Mapping[str, Any], c: Config) -> None:
    """NativeAuthenticator: admins approve sign-ups; an invitation claims an account an admin made."""
    c.JupyterHub.authenticator_class = "spawner.auth.PlatformAuthenticator"
    c.JupyterHub.template_paths = [TEMPLATES]  # ours first: NativeAuthenticator adds its own after
    c.Authenticator.admin_users = set(s["admin_users"])
    c.Authenticator.allow_all = True  # approval (sign-up) or an invitation is the gate
    c.PlatformAuthenticator.initial_admin = s["admin_users"][0] if s["admin_users"] else ""
    c.PlatformAuthenticator.initial_admin_password_file = secret_path(s["data_dir"], INITIAL_ADMIN_PASSWORD)
    c.NativeAuthenticator.minimum_password_length = 10
    c.NativeAuthenticator.check_common_password = True


def _services(s: Mapping[str, Any], c: Config) -> None:
    """The admin CLI and, where idle_timeout is set, the idle culler: each with a scoped role."""
    token = ensure_secret(secret_path(s["data_dir"], HUBCTL_TOKEN))
    services = [{"name": "hubctl", "api_token": token}]
    roles = [{"name": "hubctl", "services": ["hubctl"], "scopes": HUBCTL_SCOPES}]
    timeout = s["idle_timeout"]
    if timeout:  # culling stops the server, which returns its GPUs
        # look often enough that a server outlives its timeout by at most a quarter
        every = max(5, min(300, timeout // 4))
        command = ["python3", "-m", "jupyterhub_idle_culler", f"--timeout={timeout}", f"--cull-every={every}"]
        services.append({"name": "idle-culler", "command": command})
        roles.append({"name": "idle-culler", "services": ["idle-culler"], "scopes": CULLER_SCOPES})
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
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60
