# The hub's configuration: the platform's settings (spawner/settings.py:
# settings.yml and GPUHUB_* variables) applied by spawner/configure.py, then
# the site's jupyterhub_config.d/*.py in name order, each with a `c` of its own
# that is merged over this one (traitlets' load_subconfig, as TLJH does).
import glob
import os

from spawner import GPUDockerSpawner, GPUSwarmSpawner
from spawner.configure import apply
from spawner.settings import SettingsError, load_settings

c = get_config()  # noqa: F821 (get_config and load_subconfig come from traitlets' config loader)
try:
    apply(load_settings(), c)
except SettingsError as e:
    # One line naming the setting, and no hub: not a traceback, not a half-configured hub.
    raise SystemExit(f"gpuhub: cannot start: {e}") from None
for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "jupyterhub_config.d", "*.py"))):
    load_subconfig(path)  # noqa: F821

# Last, over the site's files too: a broken static profile_list stops the hub
# now, with the profile and key named, not a user's spawn later.
(GPUSwarmSpawner if c.JupyterHub.spawner_class == "gpuswarm" else GPUDockerSpawner).check_config(c)
