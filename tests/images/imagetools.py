"""Helpers of the image tests (tests/images): constants, a container to exec into."""

import re
import time
import uuid
from pathlib import Path

import pytest

from .. import deployment

REPO = Path(__file__).resolve().parents[2]
# Every container these tests create, and what the session's cleanup removes:
# under GPUHUB_TEST_PREFIX, so that two runs on one engine never remove each
# other's containers (gpuhub-test-img-... by default).
PREFIX = f"{deployment.PREFIX}-img-"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV = ["PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CONDA_SSL_VERIFY"]
# What a user does first in a running server (file, kernel, terminal): python -c LAB_SESSION URL TOKEN [KERNEL]
LAB_SESSION = (REPO / "tests/images/scripts/lab_session.py").read_text()
LAB_SESSION_STEPS = ["saved a file", "kernel {kernel} ran code", "terminal ran a command"]
# Prints the modules of rfc3987-syntax that a server start imports: "[]" in our
# images. They build Lark grammars on import, about 1 s of CPU per server start
# (jupyter_server#1559).
IRI_GRAMMAR_PROBE = (
    "import sys, jupyterhub.singleuser, jupyterlab.labapp; print(sorted({'rfc3987_syntax', 'lark'} & set(sys.modules)))"
)


class Box:
    """A container of an image, kept alive by `sleep` under the image's
    entrypoint, that checks exec into (each with a timeout)."""

    def __init__(self, client, image, **kwargs):
        self.container = client.containers.run(
            image,
            kwargs.pop("command", ["sleep", "900"]),
            name=f"{PREFIX}{uuid.uuid4().hex[:10]}",
            detach=True,
            **kwargs,
        )

    def run(self, *cmd, user="", timeout=60):
        """(exit code, stdout, stderr) of `cmd` run inside the container."""
        res = self.container.exec_run(["timeout", str(timeout), *cmd], user=user, demux=True)
        out, err = (b.decode(errors="replace") if b else "" for b in res.output)
        return res.exit_code, out, err

    def check(self, *cmd, **kwargs):
        """stdout of `cmd`, stripped; fails the test when it exits non-zero."""
        rc, out, err = self.run(*cmd, **kwargs)
        assert rc == 0, f"{cmd} exited {rc} in {self.image_name}:\n{out}\n{err}"
        return out.strip()

    def read(self, path):
        return self.check("cat", path)

    def logs(self):
        return self.container.logs().decode(errors="replace")

    def wait_for_log(self, text, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            self.container.reload()
            assert self.container.status == "running", f"container exited:\n{self.logs()}"
            time.sleep(1)
        pytest.fail(f"{text!r} not logged within {timeout}s:\n{self.logs()}")

    @property
    def image_name(self):
        return self.container.attrs["Config"]["Image"]

    def remove(self):
        self.container.remove(force=True, v=True)


def error_lines(log):
    """Log lines that report an error (docker-stacks: a line starting with ERROR fails)."""
    return [line for line in log.splitlines() if re.match(r"(ERROR|\[E )", line)]


def pem_bodies(text):
    """The base64 bodies of the PEM certificates in `text`, whitespace removed."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    return {"".join(b.split()) for b in blocks}
