"""The GPU suite's names and its view of the host (fixtures: conftest.py beside this)."""

import subprocess

import pytest

from spawner import inventory
from spawner.inventory import Gpu

from ..deployment import PORT, PREFIX, TAG

GPU_PREFIX = f"{PREFIX}-gpu"
GPU_PORT = PORT + 500
PRODUCTION_IMAGE = f"gpuhub/singleuser:{TAG}"
NVIDIA_OVERRIDE = "docker-compose.nvidia.yml"


def host_devices() -> list[Gpu]:
    """The leasable devices as the host's own `nvidia-smi -L` lists them (MIG instances instead of their GPU)."""
    try:
        listing = inventory.run_nvidia_smi(inventory.SMI_LIST)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.fail(
            f"the gpu tests need an NVIDIA GPU and its driver, and `nvidia-smi -L` failed here: {err}. "
            'On a host without a GPU, deselect them: pytest -m "not gpu" (make test does).'
        )
    devices = inventory.parse_smi_list(listing)
    if not devices:
        pytest.fail(f"`nvidia-smi -L` lists no leasable device (GPU, or MIG instance of a GPU in MIG mode):\n{listing}")
    return devices


def profiles(device_count: int) -> list[dict]:
    """gpu-N (stand-in image) and gpu-N-production, for N = 1 and, where the host has two devices, 2."""
    found = []
    for n in (1, 2)[: min(device_count, 2)]:
        found.append({"display_name": f"{n} GPU", "slug": f"gpu-{n}", "spawner_override": {"gpus": n}})
        found.append(
            {
                "display_name": f"{n} GPU, production image",
                "slug": f"gpu-{n}-production",
                "spawner_override": {"gpus": n, "image": PRODUCTION_IMAGE},
            }
        )
    found[0]["default"] = True
    return found
