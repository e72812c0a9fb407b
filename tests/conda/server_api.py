"""Runs INSIDE the production image, with the base env's python (`python -c`).

Starts `jupyter server` as the image does (system config from /etc/jupyter:
the kernel spec manager nb_conda_kernels enabled, the production-only
settings, the gpuhub_condakernels extension), sends it the requests in order,
stops it, prints the server log to stderr and one line to stdout:
RESULT [{"status": HTTP status, "body": JSON or text}, ...], or RESULT null
when the server never answered.

usage: python -c "$(cat server_api.py)" TIMEOUT_SECONDS REQUESTS_JSON
  REQUESTS_JSON: [["GET", "/api/kernelspecs", null], ["POST", "/api/kernels", {}]]
"""

import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PORT = 18888
token = secrets.token_hex(16)
deadline = time.monotonic() + float(sys.argv[1])
requests = json.loads(sys.argv[2])


def call(method, path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return {"status": response.status, "body": json.load(response)}
    except urllib.error.HTTPError as err:  # an answer, not a connection failure
        text = err.read().decode(errors="replace")
        try:
            return {"status": err.code, "body": json.loads(text)}
        except ValueError:
            return {"status": err.code, "body": text}


results = None
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
    try:
        while server.poll() is None and time.monotonic() < deadline:
            try:
                call("GET", "/api/status", None)
            except OSError:
                time.sleep(1)
                continue
            results = [call(*req) for req in requests]
            break
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace"))
print("RESULT " + json.dumps(results))
