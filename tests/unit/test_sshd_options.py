"""What images/sshd/jupyter_server_config.py makes of jupyter-sshd-proxy's sshd
command. jupyter_sshd_proxy itself is not installed here (it makes a host key
in ~/.ssh when called): a stand-in gives the file a command to extend and a
host key path under pytest's tmp_path; the real one runs in tests/ssh."""

import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
from traitlets.config import Config

CONFIG = Path(__file__).resolve().parents[2] / "images/sshd/jupyter_server_config.py"
BASE = [
    "/usr/sbin/sshd",
    "-h",
    "/home/jovyan/.ssh/jupyter_sshd_hostkey",
    "-f",
    "none",
    "-o",
    "ListenAddress 127.0.0.1:{port}",
]


@pytest.fixture
def hostkey(tmp_path) -> Path:
    """Where the fake jupyter_sshd_proxy keeps the host key: one made at an earlier start."""
    path = tmp_path / "home/.ssh/jupyter_sshd_hostkey"
    path.parent.mkdir(parents=True)
    path.write_text("a key made at an earlier start")
    return path


@pytest.fixture
def served(monkeypatch, hostkey):
    return lambda **environ: serve(monkeypatch, hostkey, **environ)


def serve(monkeypatch, hostkey: Path, **environ) -> dict:
    """ServerProxy.servers as the config file sets it, under ``environ``."""
    for name in ("PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    fake = types.ModuleType("jupyter_sshd_proxy")
    fake.HOSTKEY_PATH = str(hostkey)
    fake.setup_sshd = lambda: {"command": list(BASE), "raw_socket_proxy": True, "timeout": 60}
    monkeypatch.setitem(sys.modules, "jupyter_sshd_proxy", fake)
    c = Config()
    runpy.run_path(str(CONFIG), init_globals={"c": c})
    return c.ServerProxy.servers


def options(argv):
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]


def test_sshd_keeps_the_packages_command_and_appends_the_hardening(served):
    sshd = served()["sshd"]
    assert sshd["raw_socket_proxy"] is True
    argv = sshd["command"]
    assert argv[: len(BASE)] == BASE
    added = options(argv[len(BASE) :])
    for line in [
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthenticationMethods publickey",
        "AllowTcpForwarding local",
        "PermitListen none",
        "AllowAgentForwarding no",
        "AllowStreamLocalForwarding no",
    ]:
        assert line in added


def test_session_gets_path_and_gpu_variables_but_no_token(served):
    environ = {"PATH": "/opt/conda/bin:/usr/bin", "CUDA_VISIBLE_DEVICES": "0,1", "JUPYTERHUB_API_TOKEN": "s3"}
    sshd = served(**environ)["sshd"]
    [setenv] = [o for o in options(sshd["command"]) if o.startswith("SetEnv ")]
    assert setenv == "SetEnv PATH=/opt/conda/bin:/usr/bin CUDA_VISIBLE_DEVICES=0,1"


def test_values_sshd_or_the_port_template_would_misread_are_left_out(served):
    environ = {"PATH": "/a b:/usr/bin", "CUDA_VISIBLE_DEVICES": "{port}", "NVIDIA_VISIBLE_DEVICES": 'x"y'}
    sshd = served(**environ)["sshd"]
    assert not [o for o in options(sshd["command"]) if o.startswith("SetEnv")]


def test_a_new_workspace_gets_an_ed25519_host_key_and_an_existing_key_is_kept(served, hostkey):
    served()
    assert hostkey.read_text() == "a key made at an earlier start"
    hostkey.unlink()
    hostkey.parent.rmdir()
    served()  # made here, not by setup_sshd's RSA default (half a second of CPU per new workspace)
    public = hostkey.with_name(hostkey.name + ".pub").read_text()
    assert public.startswith("ssh-ed25519 ")
    assert oct(hostkey.parent.stat().st_mode & 0o777) == "0o700" and oct(hostkey.stat().st_mode & 0o777) == "0o600"
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(hostkey)], capture_output=True, text=True, check=True)
    assert "(ED25519)" in fingerprint.stdout
