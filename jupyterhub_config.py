# The hub's configuration: declarative, fed by the one settings schema
# (spawner/settings.py: GPUHUB_* variables and/or GPUHUB_SETTINGS_FILE).
# Site-specific additions go in jupyterhub_config.d/*.py, loaded last.
import glob
import os

from tornado.httpserver import HTTPServer

from spawner.auth import TEMPLATES
from spawner.hubsecrets import ensure_secret
from spawner.settings import load_settings

c = get_config()  # noqa: F821 (provided by JupyterHub)
s = load_settings()
data = s["data_dir"]

# -- hub, proxy, database, secrets ------------------------------------------
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = f"http://{s['hub_connect_host']}:8081"
c.JupyterHub.db_url = f"sqlite:///{data}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{data}/secrets/cookie_secret"
c.ConfigurableHTTPProxy.auth_token = ensure_secret(f"{data}/secrets/proxy_token")
c.ConfigurableHTTPProxy.pid_file = f"{data}/jupyterhub-proxy.pid"
c.JupyterHub.cleanup_servers = False  # hub restarts leave user servers running
c.JupyterHub.log_level = s["log_level"].upper()
# Requests to the hub (forms, REST) are small; the default 100 MB cap lets one
# request echo megabytes into pages and logs. Notebook traffic goes to user servers.
HTTPServer.configure(None, max_body_size=256 * 1024)

# -- login: NativeAuthenticator, admins approve sign-ups, invitations --------
c.JupyterHub.authenticator_class = "spawner.auth.PlatformAuthenticator"
c.JupyterHub.template_paths = [TEMPLATES]  # ours first: NativeAuthenticator adds its own after
c.Authenticator.admin_users = set(s["admin_users"])
c.Authenticator.allow_all = True  # approval (sign-up) or an invitation is the gate
c.PlatformAuthenticator.initial_admin = s["admin_users"][0] if s["admin_users"] else ""
c.PlatformAuthenticator.initial_admin_password_file = f"{data}/secrets/initial_admin_password"
c.NativeAuthenticator.minimum_password_length = 10
c.NativeAuthenticator.check_common_password = True
# SameSite=Lax on the login, session and _xsrf cookies: a cross-site POST
# carries no hub credentials (JupyterHub passes cookie_options to all three).
c.JupyterHub.tornado_settings.update({"cookie_options": {"samesite": "Lax"}})

# -- services: admin CLI and idle culler, each with scoped permissions ------
c.JupyterHub.services = [{"name": "hubctl", "api_token": ensure_secret(f"{data}/secrets/hubctl_token")}]
c.JupyterHub.load_roles = [
    {
        "name": "hubctl",
        "services": ["hubctl"],
        "scopes": [
            "admin:users",
            "admin:servers",
            "admin:groups",
            "tokens",
            "read:hub",
        ],
    },
]
if s["idle_timeout"]:  # culling stops the server, which returns its GPUs
    c.JupyterHub.services.append(
        {
            "name": "idle-culler",
            "command": [
                "python3",
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={s['idle_timeout']}",
                # look often enough that a server outlives its timeout by at most a quarter
                f"--cull-every={max(5, min(300, s['idle_timeout'] // 4))}",
            ],
        }
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "services": ["idle-culler"],
            "scopes": [
                "list:users",
                "read:users:activity",
                "read:servers",
                "delete:servers",
            ],
        }
    )

# -- spawner: one container per user, GPUs leased from Docker labels ---------
c.JupyterHub.spawner_class = "gpudocker"
c.GPUDockerSpawner.prefix = s["prefix"]
c.GPUDockerSpawner.network_name = s["network"]
c.GPUDockerSpawner.use_internal_ip = True
c.GPUDockerSpawner.image = s["image"]
c.GPUDockerSpawner.allowed_images = s["allowed_images"]  # the configured image is always allowed
c.GPUDockerSpawner.pull_policy = s["pull_policy"]
c.GPUDockerSpawner.mem_limit = s["mem_limit"]
c.GPUDockerSpawner.cpu_limit = s["cpu_limit"]
c.GPUDockerSpawner.shm_size = s["shm_size"]
c.GPUDockerSpawner.shared_data = s["shared_data"]
c.GPUDockerSpawner.gpu_ids = s["gpus"]
c.GPUDockerSpawner.gpu_mode = s["gpu_mode"]
c.GPUDockerSpawner.gpu_runtime = s["gpu_runtime"]
c.GPUDockerSpawner.isolate_servers = s["isolate_servers"]
c.GPUDockerSpawner.gpu_quota = s["gpu_quota"]
c.GPUDockerSpawner.gpu_group_quotas = s["gpu_group_quotas"]
if s["profiles"]:
    c.GPUDockerSpawner.profile_list = s["profiles"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "jupyterhub_config.d", "*.py"))):
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"))  # noqa: S102 (site config, as TLJH does)
