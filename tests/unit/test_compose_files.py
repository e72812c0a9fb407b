"""Which compose files start the hub (scripts/compose-files, used by scripts/up),
and what docker-compose.nvidia.yml gives the hub container.

Seam: the `docker` command. A fake one on PATH answers `docker info` with the
runtime names a real engine would list; nothing else of the script is replaced.
"""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/compose-files"


def compose_files(tmp_path, runtimes: list[str], status: int = 0) -> subprocess.CompletedProcess:
    """Run scripts/compose-files against a fake engine that has ``runtimes``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    (tmp_path / "runtimes").write_text("".join(f"{name}\n" for name in runtimes))
    docker.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >>{tmp_path}/calls\n'
        f"[ {status} -eq 0 ] || {{ echo 'Cannot connect to the Docker daemon' >&2; exit {status}; }}\n"
        f"cat {tmp_path}/runtimes\n"
    )
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run([str(SCRIPT)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_an_engine_with_the_nvidia_runtime_gets_the_nvml_override(tmp_path):
    r = compose_files(tmp_path, ["io.containerd.runc.v2", "nvidia", "runc"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["docker-compose.yml", "docker-compose.nvidia.yml"]
    [call] = (tmp_path / "calls").read_text().splitlines()
    assert call.startswith("info --format")


@pytest.mark.parametrize(
    "runtimes",
    [["runc"], ["runc", "gpuhub-test-runc"], ["runc", "nvidia-experimental"], ["runc", "my-nvidia"]],
    ids=["runc-only", "test-seam", "similar-name", "suffix"],
)
def test_any_other_engine_gets_the_base_file_only(tmp_path, runtimes):
    r = compose_files(tmp_path, runtimes)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["docker-compose.yml"]


def test_an_unreachable_engine_stops_the_choice_with_a_message(tmp_path):
    r = compose_files(tmp_path, ["nvidia"], status=1)
    assert r.returncode == 1 and r.stdout == ""
    assert "docker info failed" in r.stderr


def test_the_override_gives_the_hub_nvml_with_the_utility_capability_only():
    override = yaml.safe_load((ROOT / "docker-compose.nvidia.yml").read_text())
    assert override == {
        "services": {
            "hub": {
                "runtime": "nvidia",
                "environment": {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "utility"},
            }
        }
    }


def test_without_the_override_the_hub_gets_no_driver():
    hub = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["hub"]
    environment = hub.get("environment") or {}
    names = environment if isinstance(environment, dict) else [item.split("=", 1)[0] for item in environment]
    assert "runtime" not in hub and "deploy" not in hub
    assert not [name for name in names if name.startswith("NVIDIA_")]
