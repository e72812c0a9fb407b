"""How nb_conda_kernels 2.5.x names conda envs and their kernels, and which
team env a personal env of the same name shadows.

Read from nb_conda_kernels 2.5.2, nb_conda_kernels/manager.py
(https://github.com/anaconda/nb_conda_kernels/blob/2.5.2/nb_conda_kernels/manager.py):
- CondaKernelSpecManager._all_envs (lines 226-250) names the envs in the order
  `conda info --json` lists them. An env in `<root>/envs` keeps its directory
  name, unless an earlier env took that name: then, like an env in any other
  directory called `envs`, it is prefixed with that directory's parent's name
  (`/opt/conda/envs/x` -> `conda-x`). A name still taken gets `-2`, `-3`...
- _all_specs (lines 282-298) names a kernel `conda-env-<env>-<kernel>`, with
  ipykernel's kernel directory `python3` shortened to `py`, and every character
  outside [a-zA-Z0-9._-] replaced by `_` (clean_kernel_name, lines 131-144).
conda 24.9.2 lists env prefixes sorted (conda/core/envs_manager.py,
list_all_known_prefixes, line 163), so a personal env
(/home/jovyan/conda-envs/x) comes before the team env (/opt/conda/envs/x):
the personal env takes the name `x` and the kernel `conda-env-x-py`, the team
env becomes `conda-x` with the kernel `conda-env-conda-x-py`.

Standard library only: the production single-user image copies this file alone
into its base env as the Jupyter server extension `gpuhub_condakernels`, which
logs a WARNING per shadowed team env at server start; `hubctl envs list` marks
the same envs from the hub (spawner/hubctl/envs.py).
"""

import posixpath
import re
import unicodedata
from dataclasses import dataclass

ROOT_PREFIX = "/opt/conda"  # the production image's conda; team envs in <root>/envs
TEAM_ENVS_DIR = posixpath.join(ROOT_PREFIX, "envs")


def env_names(env_paths, root_prefix: str = ROOT_PREFIX) -> dict[str, str]:
    """{name: env path} as nb_conda_kernels names `env_paths`: every env
    `conda info` lists except those env_filter hides (the base env, here)."""
    envs_prefix = posixpath.join(root_prefix, "envs")
    names: dict[str, str] = {}
    for path in sorted(env_paths):  # conda's order
        parent, name = posixpath.split(path)
        if posixpath.basename(parent) == "envs" and (parent != envs_prefix or name in names):
            name = f"{posixpath.basename(posixpath.dirname(parent))}-{name}"
        if name in names:
            count = 2
            while f"{name}-{count}" in names:
                count += 1
            name = f"{name}-{count}"
        names[name] = path
    return names


def kernel_name(env_name: str) -> str:
    """The kernel name of ipykernel's kernel (directory `python3`) in env `env_name`."""
    ascii_name = "".join(c for c in unicodedata.normalize("NFKD", env_name) if not unicodedata.combining(c))
    return re.sub(r"[^a-zA-Z0-9._\-]", "_", f"conda-env-{ascii_name}-py")


@dataclass(frozen=True)
class Shadowing:
    name: str  # the team env's own name, which another env has taken
    team_path: str
    listed_as: str  # the name the team env is listed under instead
    taken_by: str  # the path of the env that has the name


def shadowed_team_envs(names: dict[str, str], team_dir: str = TEAM_ENVS_DIR) -> list[Shadowing]:
    """The team envs (directly in `team_dir`) listed under a name other than
    their own in `names`: {name: env path} of every env, as env_names gives it."""
    found = []
    for listed_as, path in sorted(names.items()):
        parent, own = posixpath.split(path)
        if parent == team_dir and listed_as != own:
            found.append(Shadowing(own, path, listed_as, names[own]))
    return found


def shadowing_message(shadow: Shadowing, default_kernel: str | None = None) -> str:
    """One line for the log or the admin: which env, what it breaks, what to do."""
    kernel = kernel_name(shadow.name)
    if kernel == default_kernel:
        kernel += ', the default kernel that "New notebook" starts'
    return (
        f"conda env {shadow.taken_by} has the name of the team env {shadow.name!r} ({shadow.team_path}): "
        f"it takes over the kernel name {kernel} (or, without ipykernel in it, leaves no kernel of that name), "
        f"and the team env is listed as {shadow.listed_as!r} (kernel {kernel_name(shadow.listed_as)}). "
        f"Give it another name: conda rename -p {shadow.taken_by} NEW_NAME"
    )


def _load_jupyter_server_extension(serverapp) -> None:
    """Server start (production image): one WARNING per shadowed team env, from
    the env names of the server's own kernel spec manager, kernel or not
    (CondaKernelSpecManager._all_envs, manager.py line 208)."""
    manager = serverapp.kernel_spec_manager
    if not hasattr(manager, "_all_envs"):
        serverapp.log.warning(
            "gpuhub_condakernels: %s is not nb_conda_kernels' manager: shadowed team envs are not checked",
            type(manager).__name__,
        )
        return
    for shadow in shadowed_team_envs(manager._all_envs()):
        serverapp.log.warning(shadowing_message(shadow, serverapp.kernel_manager.default_kernel_name))
