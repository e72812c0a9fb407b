"""Helpers of the conda suite (tests/conda): constants, the container to exec
into, and what the repository says the kernels must look like."""

import json
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import tomllib
import yaml
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"gpuhub/singleuser:{VERSION}"
PREFIX = "gpuhub-test-conda-"  # every container and volume of this suite
DEFAULT_PROBE = "https://conda.anaconda.org/conda-forge/noarch/repodata.json"
PROBE_TIMEOUT = 10
SERVER_CONFIG = "/etc/jupyter/jupyter_server_config.json"  # where the images copy it
SPECS = sorted((REPO / "kernels").glob("*.yml"))
# The production image's default kernel, as its production-only settings name it.
DEFAULT_KERNEL = (
    PyFileConfigLoader("jupyter_server_config.py", path=str(REPO / "kernels/jupyter/production"))
    .load_config()
    .MultiKernelManager.default_kernel_name
)


def probe_channel(url, timeout=PROBE_TIMEOUT):
    """None when `url` answers, else why not (one line)."""
    try:
        request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1)
        return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        return " ".join(str(err.reason).split())
    except (OSError, ValueError) as err:
        return " ".join(str(err).split())


class Box:
    """A container of the image kept alive by `sleep`; checks exec into it, each
    under `timeout` so that nothing waits forever."""

    def __init__(self, client, image, volume=None):
        volumes = {volume: {"bind": "/home/jovyan", "mode": "rw"}} if volume else None
        self.container = client.containers.run(
            image, ["sleep", "7200"], name=f"{PREFIX}{uuid.uuid4().hex[:10]}", detach=True, volumes=volumes
        )

    def run(self, *cmd, timeout=120):
        res = self.container.exec_run(["timeout", str(timeout), *cmd], demux=True)
        out, err = (b.decode(errors="replace") if b else "" for b in res.output)
        return res.exit_code, out, err

    def check(self, *cmd, timeout=120):
        rc, out, err = self.run(*cmd, timeout=timeout)
        assert rc == 0, f"{cmd} exited {rc}:\n--- stdout\n{out}\n--- stderr\n{err}"
        return out, err

    def dump(self):
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return f"--- {self.container.name}: already removed"
        state = json.dumps(self.container.attrs.get("State"), indent=2)
        return f"--- {self.container.name} state\n{state}\n--- logs\n" + self.container.logs().decode(errors="replace")

    def remove(self):
        """Remove the container; a second call does nothing."""
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


def load_specs():
    return {path.stem: yaml.safe_load(path.read_text()) for path in SPECS}


def pinned_version(spec, package):
    """The version a spec pins `package` to (`pkg=1.2`, `pkg==1.2`, `pkg=1.2=build`)."""
    for dep in spec["dependencies"]:
        match = isinstance(dep, str) and re.fullmatch(rf"{re.escape(package)}==?([^=]+)(=.*)?", dep)
        if match:
            return match[1]
    raise KeyError(f"{spec['name']} does not pin {package}")


def expected_display_name(env, kernel_display_name="Python 3 (ipykernel)"):
    """The display name nb_conda_kernels 2.5 makes from the configured name_format."""
    config = json.loads((REPO / "kernels/jupyter/jupyter_server_config.json").read_text())
    language = "Python" if kernel_display_name.startswith("Python") else kernel_display_name
    return config["CondaKernelSpecManager"]["name_format"].format(
        language,
        env,
        language=language,
        environment=env,
        display_name=kernel_display_name,
        kernel="python3",
        conda_kernel=f"conda-env-{env}-py",
    )


def script(name):
    """Text of a check script in tests/conda/, to run with `python -c`."""
    return (HERE / name).read_text()
