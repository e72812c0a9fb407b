"""The sshd of SSH into one's own container: jupyter-sshd-proxy's, hardened.

Installed as /usr/local/etc/jupyter/jupyter_server_config.py in both
single-user images (a config directory of its own: /etc/jupyter holds the
production image's file). jupyter-sshd-proxy starts sshd as the user, with no
system config (`-f none`), the host key kept in the workspace
(~/.ssh/jupyter_sshd_hostkey, made once) and the workspace's
~/.ssh/authorized_keys; every other option is sshd's default, which allows
passwords and remote and agent forwarding. Its command is taken as it is and
options are appended: it sets none of them, and sshd keeps the first value
it reads. Declared here under the same name, "sshd", this entry answers
/user/NAME/sshd/ (servers from the config are routed before entry points).
"""

import os
import re
import subprocess

from jupyter_sshd_proxy import HOSTKEY_PATH, setup_sshd

# Keys only; local forwards only (VS Code, TensorBoard: `ssh -L`); nothing
# that opens a listener in the container or reaches the laptop's agent.
OPTIONS = {
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "no",
    "AuthenticationMethods": "publickey",
    "AllowTcpForwarding": "local",
    "PermitListen": "none",
    "AllowAgentForwarding": "no",
    "AllowStreamLocalForwarding": "no",
    "X11Forwarding": "no",
    "PermitTunnel": "no",
    "PermitUserEnvironment": "no",
    "PermitUserRC": "no",
}
# sshd gives a session a bare PATH: pass on what a JupyterLab terminal has
# (the image's Python or conda, the leased GPUs), never the server's tokens.
SESSION_ENV = ("PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
# A value sshd reads as one word, and that jupyter-server-proxy's {port} templating leaves alone.
PLAIN = re.compile(r'[^\s"\'{}\\]+')


def sshd_command(base: list[str], environ) -> list[str]:
    options = [f"{key} {value}" for key, value in OPTIONS.items()]
    env = [f"{name}={environ[name]}" for name in SESSION_ENV if PLAIN.fullmatch(environ.get(name, ""))]
    if env:
        options.append("SetEnv " + " ".join(env))
    return [*base, *(arg for option in options for arg in ("-o", option))]


# setup_sshd makes a missing host key with ssh-keygen's default type, RSA 3072
# on Debian 12: half a second of CPU at a new workspace's first start, which a
# class logging in at once pays 25 times over (issue 13). An Ed25519 key made
# here takes milliseconds; setup_sshd then finds it and uses it.
if not os.path.exists(HOSTKEY_PATH):
    os.makedirs(os.path.dirname(HOSTKEY_PATH), mode=0o700, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", HOSTKEY_PATH], check=True)
sshd = setup_sshd()
sshd["command"] = sshd_command(sshd["command"], os.environ)
c.ServerProxy.servers = {"sshd": sshd}  # noqa: F821 (c: the config object Jupyter passes)
