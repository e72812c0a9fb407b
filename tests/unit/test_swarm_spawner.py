"""GPUSwarmSpawner without a swarm: its configuration, its command step, and what the
settings make of it. The spawner against a real swarm: tests/swarm."""

import asyncio
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from dockerspawner import DockerSpawner
from traitlets import TraitError
from traitlets.config import Config

from spawner.configure import DOCKER_ONLY, apply
from spawner.leases import NoGpuAvailable
from spawner.settings import SettingsError, load_settings
from spawner.swarm import GPUSwarmSpawner

ROOT = Path(__file__).resolve().parents[2]
NODE_CONFIG = ROOT / "scripts/swarm-node-config"
USER = SimpleNamespace(name="alice", admin=False, groups=[])


@pytest.fixture
def swarm_settings(tmp_path):
    return load_settings({"GPUHUB_DATA_DIR": str(tmp_path), "GPUHUB_ENGINE": "swarm"})


def test_engine_swarm_selects_the_swarm_spawner_with_the_same_settings(swarm_settings):
    c = Config()
    apply(swarm_settings, c)
    assert c.JupyterHub.spawner_class == "gpuswarm"
    assert set(c.GPUSwarmSpawner) == set(c.GPUDockerSpawner) - set(DOCKER_ONLY)
    spawner = GPUSwarmSpawner(user=USER, config=c)  # every value is one its traits accept
    assert spawner.prefix == swarm_settings["prefix"] and spawner.mem_limit == 8 * 1024**3  # "8G"
    assert not spawner.volume_driver  # no shared storage: users are pinned to their workspace's node


def test_an_nfs_export_mounts_each_workspace_from_its_own_directory(tmp_path):
    settings = load_settings(
        {"GPUHUB_DATA_DIR": str(tmp_path), "GPUHUB_ENGINE": "swarm", "GPUHUB_WORKSPACE_NFS": "10.0.0.5:/export/homes/"}
    )
    c = Config()
    apply(settings, c)
    spawner = GPUSwarmSpawner(user=USER, config=c)
    assert spawner.volume_driver == "local"
    assert spawner.volume_driver_options == {
        "type": "nfs",
        "o": "addr=10.0.0.5,rw,nfsvers=4",
        "device": ":/export/homes/{prefix}-home-{username}",
    }


@pytest.mark.parametrize("export", ["10.0.0.5", "/export", "host:/a b", "host:/x;rm"])
def test_a_malformed_nfs_export_is_refused(export, tmp_path):
    with pytest.raises(SettingsError, match="workspace_nfs"):
        load_settings({"GPUHUB_DATA_DIR": str(tmp_path), "GPUHUB_WORKSPACE_NFS": export})


def test_a_resource_kind_that_could_break_the_command_step_is_refused():
    with pytest.raises(TraitError, match="gpu_resource_kind"):
        GPUSwarmSpawner(gpu_resource_kind="GPU=1;reboot")


def test_the_command_step_exports_the_ids_swarm_assigned_as_nvidia_visible_devices(monkeypatch):
    async def image_command(self):
        return ["printenv", "NVIDIA_VISIBLE_DEVICES"]

    monkeypatch.setattr(DockerSpawner, "get_command", image_command)
    spawner = GPUSwarmSpawner(gpus=2)
    command = asyncio.run(spawner.get_command())
    env = {"PATH": "/usr/bin:/bin", "DOCKER_RESOURCE_NVIDIA-GPU": "GPU-a,GPU-b"}  # a name sh itself drops
    assert subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout == "GPU-a,GPU-b\n"
    assert asyncio.run(GPUSwarmSpawner(gpus=0).get_command()) == ["printenv", "NVIDIA_VISIBLE_DEVICES"]


def test_the_no_gpu_message_names_the_cluster():
    text = NoGpuAvailable(1, 4, 4, [], where="in this cluster").message(viewer_is_admin=False)
    assert "4 of the 4 GPUs in this cluster are leased" in text


def node_config(*args, check=True):
    return subprocess.run([str(NODE_CONFIG), *args], capture_output=True, text=True, check=check, timeout=30)


def test_node_config_advertises_the_gpus_with_the_runtime_as_default():
    config = json.loads(node_config("GPU-a", "GPU-b").stdout)
    assert config == {"node-generic-resources": ["NVIDIA-GPU=GPU-a", "NVIDIA-GPU=GPU-b"], "default-runtime": "nvidia"}


def test_node_config_install_merges_into_the_daemons_file(tmp_path):
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"log-driver": "local", "node-generic-resources": ["NVIDIA-GPU=old", "SSD=1"]}))
    node_config("--install", str(daemon), "--runtime", "gpuhub-test-runc=runc", "GPU-a")
    assert json.loads(daemon.read_text()) == {
        "log-driver": "local",
        "node-generic-resources": ["SSD=1", "NVIDIA-GPU=GPU-a"],
        "runtimes": {"gpuhub-test-runc": {"path": "runc"}},
        "default-runtime": "gpuhub-test-runc",
    }


@pytest.mark.parametrize(
    "args, error",
    [(["GPU-a", "GPU-a"], "distinct"), (["GPU a;x"], "plain"), (["--kind", "A=B", "GPU-a"], "--kind"),
     (["--runtime", "x;y", "GPU-a"], "--runtime")],
)  # fmt: skip
def test_node_config_refuses_bad_input_and_changes_nothing(args, error, tmp_path):
    daemon = tmp_path / "daemon.json"
    daemon.write_text("{}")
    result = node_config("--install", str(daemon), *args, check=False)
    assert result.returncode != 0 and error in result.stderr
    assert daemon.read_text() == "{}"


def test_node_config_leaves_a_broken_daemon_file_alone(tmp_path):
    daemon = tmp_path / "daemon.json"
    daemon.write_text("{broken")
    result = node_config("--install", str(daemon), "GPU-a", check=False)
    assert result.returncode != 0 and "not JSON" in result.stderr
    assert daemon.read_text() == "{broken"
