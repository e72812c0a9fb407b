"""What images/sshd/jupyter_server_config.py makes of jupyter-sshd-proxy's sshd
command. jupyter_sshd_proxy itself is not installed here (it makes a host key
in ~/.ssh when called): a stand-in gives the file a command to extend; the
real one runs in tests/ssh."""

import runpy
import sys
import types
from pathlib import Path

from traitlets.config import Config

CONFIG = Path(__file__).resolve().parents[2] / "images/sshd/jupyter_server_config.py"
HOSTKEY = "/home/jovyan/.ssh/jupyter_sshd_hostkey"
BASE = ["/usr/sbin/sshd", "-h", HOSTKEY, "-f", "none", "-o", "ListenAddress 127.0.0.1:{port}"]


def served(monkeypatch, **environ) -> dict:
    """ServerProxy.servers as the config file sets it, under ``environ``."""
    for name in ("PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    fake = types.ModuleType("jupyter_sshd_proxy")
    fake.setup_sshd = lambda: {"command": list(BASE), "raw_socket_proxy": True, "timeout": 60}
    monkeypatch.setitem(sys.modules, "jupyter_sshd_proxy", fake)
    c = Config()
    runpy.run_path(str(CONFIG), init_globals={"c": c})
    return c.ServerProxy.servers


def options(argv):
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]


def test_sshd_keeps_the_packages_command_and_appends_the_hardening(monkeypatch):
    sshd = served(monkeypatch)["sshd"]
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


def test_session_gets_path_and_gpu_variables_but_no_token(monkeypatch):
    environ = {"PATH": "/opt/conda/bin:/usr/bin", "CUDA_VISIBLE_DEVICES": "0,1", "JUPYTERHUB_API_TOKEN": "s3"}
    sshd = served(monkeypatch, **environ)["sshd"]
    [setenv] = [o for o in options(sshd["command"]) if o.startswith("SetEnv ")]
    assert setenv == "SetEnv PATH=/opt/conda/bin:/usr/bin CUDA_VISIBLE_DEVICES=0,1"


def test_values_sshd_or_the_port_template_would_misread_are_left_out(monkeypatch):
    environ = {"PATH": "/a b:/usr/bin", "CUDA_VISIBLE_DEVICES": "{port}", "NVIDIA_VISIBLE_DEVICES": 'x"y'}
    sshd = served(monkeypatch, **environ)["sshd"]
    assert not [o for o in options(sshd["command"]) if o.startswith("SetEnv")]
