"""Runs INSIDE the production image, with the base env's python (`python -c`).

Starts the kernel of one conda env the way the Jupyter server does (the
CondaKernelSpecManager configured by /etc/jupyter/jupyter_server_config.json,
the env activated by nb_conda_kernels' runner), executes code in it and prints
one line: RESULT {"kernel", "status", "stdout", "errors"}.

usage: python -c "$(cat kernel_check.py)" ENV_NAME CODE TIMEOUT_SECONDS
"""

import json
import sys

from jupyter_client.manager import KernelManager
from nb_conda_kernels import CondaKernelSpecManager
from traitlets.config.loader import JSONFileConfigLoader

env, code, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
config = JSONFileConfigLoader("jupyter_server_config.json", path="/etc/jupyter").load_config()
ksm = CondaKernelSpecManager(config=config)
names = [
    name
    for name, entry in ksm.get_all_specs().items()
    if entry["spec"].get("metadata", {}).get("conda_env_name") == env
]
if len(names) != 1:
    print(
        "RESULT "
        + json.dumps(
            {"kernel": None, "status": "no-kernel", "stdout": "", "errors": [f"kernels of env {env!r}: {names}"]}
        )
    )
    sys.exit(1)

stdout, errors = [], []


def collect(msg):
    content = msg["content"]
    if msg["msg_type"] == "stream":
        stdout.append(content["text"])
    elif msg["msg_type"] == "error":
        errors.append(f"{content['ename']}: {content['evalue']}")


km = KernelManager(kernel_name=names[0], kernel_spec_manager=ksm)
km.start_kernel()
kc = km.client()
try:
    kc.start_channels()
    kc.wait_for_ready(timeout=timeout)
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=collect)
    status = reply["content"]["status"]
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("RESULT " + json.dumps({"kernel": names[0], "status": status, "stdout": "".join(stdout), "errors": errors}))
