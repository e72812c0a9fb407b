# Baseline deployment of benchmarks/spawn.py (HUB_CONFIG_D=benchmarks/stock):
# stock DockerSpawner set up as the platform sets up its "cpu" profile. Loaded
# after jupyterhub_config.py (load_subconfig: `c` is in scope).
# Mirrored: image, prefix, network, internal IP, pull policy, remove=True, the
# per-user home volume, the cpu profile's memory and CPU limits; start_timeout
# and http_timeout are set on Spawner, so they already apply to both.
# Left out on purpose, as that is what is measured: profiles, GPU leases,
# labels, the volume created up front, cap_drop/no-new-privileges, shm size.
# ruff: noqa: F821 (c comes from traitlets' config loader)
from spawner.profiles import DEFAULT_PROFILES
from spawner.settings import load_settings

s = load_settings()

cpu = next(p for p in DEFAULT_PROFILES if p["slug"] == "cpu")["spawner_override"]

c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.prefix = s["prefix"]
c.DockerSpawner.network_name = s["network"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.image = s["image"]
c.DockerSpawner.pull_policy = s["pull_policy"]
c.DockerSpawner.remove = True
c.DockerSpawner.volumes = {"{prefix}-home-{username}": "/home/jovyan"}
c.DockerSpawner.mem_limit = cpu["mem_limit"]
c.DockerSpawner.cpu_limit = float(cpu["cpu_limit"])
