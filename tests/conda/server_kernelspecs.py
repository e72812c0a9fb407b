"""Runs INSIDE the production image, with the base env's python (`python -c`).

Starts `jupyter server` as the image does (system config from /etc/jupyter, so
with whatever kernel spec manager nb_conda_kernels enabled), asks it for
/api/kernelspecs, stops it, prints the server log to stderr and one line
RESULT <the API's JSON, or null> to stdout.

usage: python -c "$(cat server_kernelspecs.py)" TIMEOUT_SECONDS
"""

import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request

PORT = 18888
token = secrets.token_hex(16)
deadline = time.monotonic() + float(sys.argv[1])
data = None
with tempfile.TemporaryFile() as log:
    server = subprocess.Popen(
        [
            "jupyter",
            "server",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--port={PORT}",
            "--ServerApp.port_retries=0",
            "--ServerApp.root_dir=/tmp",
            f"--IdentityProvider.token={token}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/kernelspecs", headers={"Authorization": f"token {token}"}
    )
    try:
        while data is None and server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    data = json.load(response)
            except OSError:
                time.sleep(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace"))
print("RESULT " + json.dumps(data))
