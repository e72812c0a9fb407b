"""jupyterhub-idle-culler's config file (its --config): per-profile timeouts (spawner/culling.py)."""

from spawner.culling import arbiter_from_env

c = get_config()  # noqa: F821 (traitlets' config loader provides it)
c.IdleCuller.cull_arbiter_hook = arbiter_from_env()
