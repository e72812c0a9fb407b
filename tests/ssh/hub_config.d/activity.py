# The idle-culling test's hub (tests/ssh/test_ssh_activity.py): the two
# activity reports every 5 s instead of every 5 minutes, so that a 20-second
# idle_timeout can tell an SSH session from silence. The hub reads the proxy's
# per-route activity; each server reports its own (jupyterhub-singleuser).
c.JupyterHub.last_activity_interval = 5  # noqa: F821 (c: given by load_subconfig)
c.GPUDockerSpawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": "5"}  # noqa: F821
