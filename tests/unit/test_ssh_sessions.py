"""`hubctl ssh sessions` reads a user's container's /proc with a shell script
(spawner/hubctl/ssh.py). The user owns the processes it reads, so their titles and
names are hostile input: run here, against processes made to look like sessions,
the script still writes one "<start> <title>" line per session, with the right start."""

import os
import subprocess
import time

import pytest

from spawner.hubctl.ssh import _SESSIONS_SCRIPT


def start_of(pid: int) -> int:
    """The process's start, seconds since the epoch, as the kernel keeps it."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
    btime = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
    return btime + int(fields[19]) // os.sysconf("SC_CLK_TCK")


@pytest.fixture
def fake_session(tmp_path):
    """A process titled like an sshd session whose title forges a second line and
    whose name (comm) holds spaces and a parenthesis."""
    name = tmp_path / "x) 1 2 3 4"
    name.symlink_to("/bin/sleep")
    title = "sshd: mallory@pts/1\nnot-a-time forged@pts/2"
    proc = subprocess.Popen(["bash", "-c", f'exec -a "{title}" "{name}" 30'])
    for _ in range(50):  # until exec has replaced bash
        if open(f"/proc/{proc.pid}/cmdline").read().startswith("sshd: "):
            break
        time.sleep(0.1)
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_forged_title_or_name_gives_one_well_formed_line_with_the_true_start(fake_session):
    out = subprocess.run(["sh", "-c", _SESSIONS_SCRIPT], capture_output=True, text=True, timeout=30, check=True)
    mine = [line for line in out.stdout.splitlines() if "mallory" in line or "forged" in line]
    assert mine == [f"{start_of(fake_session)} mallory@pts/1 not-a-time forged@pts/2 30 "]
    for line in out.stdout.splitlines():
        start, _ = line.split(" ", 1)
        assert start.isdigit(), line
