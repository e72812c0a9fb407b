"""docker-compose.nvidia.yml merges onto docker-compose.yml with the compose this
host has (scripts/compose: the v2 plugin, else docker-compose v1.29). Nothing
is created: `config` only renders the merged file. That the override is chosen
only where the engine has the NVIDIA runtime: tests/unit/test_compose_files.py;
that the hub then finds the GPUs: tests/gpu (a GPU host)."""

import pytest
import yaml

from ..deployment import PORT, PREFIX, Deployment

pytestmark = pytest.mark.integration


def rendered(*files: str) -> dict:
    """The hub service as compose renders it from ``files`` (a project that is never started)."""
    r = Deployment(f"{PREFIX}-config", PORT).run("scripts/compose", *(a for f in files for a in ("-f", f)), "config")
    return yaml.safe_load(r.stdout)["services"]["hub"]


def test_the_nvidia_override_adds_the_runtime_and_keeps_every_base_setting():
    base = rendered("docker-compose.yml")
    merged = rendered("docker-compose.yml", "docker-compose.nvidia.yml")
    assert "runtime" not in base and merged["runtime"] == "nvidia"
    assert merged["environment"] == {
        **base["environment"],
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "utility",
    }

    # Merging may reorder a list (v1 sorts volumes) or render it as a mapping
    # (v1: extra_hosts): compare lists sorted, such mappings as "key:value" lists.
    def listed(key, value):
        if key == "extra_hosts" and isinstance(value, dict):
            value = [f"{host}:{address}" for host, address in value.items()]
        return sorted(map(str, value)) if isinstance(value, list) else value

    def rest(hub):
        return {k: listed(k, v) for k, v in hub.items() if k != "environment"}

    assert rest(merged) == {**rest(base), "runtime": "nvidia"}
