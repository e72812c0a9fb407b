"""Hub responsiveness under a flood of wrong-password logins, ours against stock NativeAuthenticator.

Runs three deployments of docker-compose.yml at once, from the built hub image
(`make images` after changing spawner/), and measures one at a time:
  ours         the platform as configured: bcrypt in a bounded thread pool,
               failed-login lockout (5 tries, then 300 s);
  ours-nolock  the same with the lockout off (benchmarks/flood-nolock/): what
               the thread pool alone does when every attempt reaches bcrypt;
  stock        NativeAuthenticator 1.3 as its documentation sets it up
               (benchmarks/stock-auth/): bcrypt on the event loop, no lockout.
Each hub gets one sign-up, "flood" (its password is hashed as any other).
Then, for each hub in turn: GET /hub/health is timed back to back for --idle
seconds, then again for --seconds while --threads threads POST /hub/login as
"flood" with a wrong password (each thread waits for its answer: the flood is
bounded). Logins are counted by answer: 403 wrong password, 429 locked out.

Reading the table: health latency median and p95 (nearest rank) in ms, idle
and under the flood; "x idle" = flood median / idle median; the last lines
compare each of ours with stock under the flood. The exit status is 0 unless
the benchmark itself broke. Deployments are removed at the end (also on
errors and Ctrl-C); the hubs' logs are kept in .build/<prefix>-<name>-hub.log.

Usage: .venv/bin/python benchmarks/login_flood.py [--threads 3] [--seconds 20] [--idle 10]
       [--prefix gpuhub-flood] [--port 18600] [--hub-image gpuhub/hub:TAG]
"""

import argparse
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
HUB_TIMEOUT = 120
HUBS = {  # name: HUB_CONFIG_D (site config loaded after jupyterhub_config.py)
    "ours": ROOT / "jupyterhub_config.d",
    "ours-nolock": ROOT / "benchmarks/flood-nolock",
    "stock": ROOT / "benchmarks/stock-auth",
}
PASSWORD = "flood-benchmark-password"


def xsrf_of(page: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    return match.group(1) if match else ""


class Hub:
    """One compose project: only the hub (no user servers are started)."""

    def __init__(self, name: str, prefix: str, port: int, hub_image: str, config_d: Path):
        self.name, self.prefix = name, f"{prefix}-{name}"
        self.url = f"http://127.0.0.1:{port}/hub"
        self.env = {
            "COMPOSE_PROJECT_NAME": self.prefix, "GPUHUB_PREFIX": self.prefix, "GPUHUB_NETWORK": self.prefix,
            "HUB_PORT": str(port), "HUB_IMAGE": hub_image, "HUB_SETTINGS_FILE": "/dev/null",
            "GPUHUB_IDLE_TIMEOUT": "0", "HUB_CONFIG_D": str(config_d),
        }  # fmt: skip

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "HUB_"))}
        argv = ["scripts/compose", *args]
        proc = subprocess.run(argv, cwd=ROOT, env={**env, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f"{self.name}: compose {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def up(self) -> None:
        self.compose("up", "-d")
        deadline = time.monotonic() + HUB_TIMEOUT
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: hub not healthy after {HUB_TIMEOUT}s:\n{self.logs()[-4000:]}")
            time.sleep(1)
        session = requests.Session()
        page = session.get(f"{self.url}/signup", timeout=30).text
        form = {"username": "flood", "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD}
        r = session.post(f"{self.url}/signup", data={**form, "_xsrf": xsrf_of(page)}, timeout=60)
        if r.status_code >= 500 or "admin" not in r.text.lower():  # both: "...sent to / approved by an admin"
            raise RuntimeError(f"{self.name}: sign-up of 'flood' failed: {r.status_code} {r.text[:300]}")

    def health_latencies(self, seconds: float) -> list[float]:
        session, latencies = requests.Session(), []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            session.get(f"{self.url}/health", timeout=30).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        return latencies

    def flood(self, stop: threading.Event, answers: Counter, lock: threading.Lock) -> None:
        session = requests.Session()
        xsrf = xsrf_of(session.get(f"{self.url}/login", timeout=30).text)
        data = {"username": "flood", "password": "wrong password!", "_xsrf": xsrf}
        while not stop.is_set():
            status = session.post(f"{self.url}/login", data=data, timeout=120).status_code
            with lock:
                answers[status] += 1

    def logs(self) -> str:
        return self.compose("logs", "--no-color", check=False, timeout=60)

    def teardown(self) -> None:
        (ROOT / ".build").mkdir(exist_ok=True)
        (ROOT / f".build/{self.prefix}-hub.log").write_text(self.logs())
        self.compose("down", "--volumes", "--remove-orphans", check=False, timeout=120)


def p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]  # nearest rank


def measure(hub: Hub, threads: int, seconds: float, idle: float) -> dict:
    quiet = hub.health_latencies(idle)
    stop, answers, lock = threading.Event(), Counter(), threading.Lock()
    flooders = [threading.Thread(target=hub.flood, args=(stop, answers, lock), daemon=True) for _ in range(threads)]
    for thread in flooders:
        thread.start()
    time.sleep(1)  # the flood under way
    loaded = hub.health_latencies(seconds)
    stop.set()
    for thread in flooders:
        thread.join(timeout=180)
    print(f"  {hub.name}: done", flush=True)
    return {"idle": quiet, "flood": loaded, "answers": answers}


def report(results: dict, threads: int, seconds: float) -> None:
    print(f"\n{threads} threads of wrong-password logins for {seconds:.0f} s; /hub/health latency in ms")
    print(
        f"{'hub':<13}{'logins':>7}{'403':>6}{'429':>6}{'5xx':>5} |{'idle median':>12}{'p95':>7} |"
        f"{'flood median':>13}{'p95':>8}{'x idle':>8}"
    )
    for name, r in results.items():
        a = r["answers"]
        errors = sum(n for status, n in a.items() if status >= 500)
        idle, flood = statistics.median(r["idle"]), statistics.median(r["flood"])
        print(
            f"{name:<13}{sum(a.values()):>7}{a[403]:>6}{a[429]:>6}{errors:>5} |{idle:>12.1f}{p95(r['idle']):>7.1f} |"
            f"{flood:>13.1f}{p95(r['flood']):>8.1f}{flood / idle:>8.1f}"
        )
    stock = statistics.median(results["stock"]["flood"])
    for name in ("ours", "ours-nolock"):
        ratio = statistics.median(results[name]["flood"]) / stock
        print(f"{name} / stock, health median under the flood: {ratio:.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--idle", type=float, default=10)
    p.add_argument("--prefix", default="gpuhub-flood", help="of the compose projects (and their volumes, networks)")
    p.add_argument("--port", type=int, default=18600, help="first of three consecutive ports")
    p.add_argument("--hub-image", default=f"gpuhub/hub:{os.environ.get('GPUHUB_TAG') or VERSION}")
    args = p.parse_args()

    hubs = [Hub(name, args.prefix, args.port + i, args.hub_image, d) for i, (name, d) in enumerate(HUBS.items())]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # teardown below runs on SIGTERM too
    try:
        for hub in hubs:
            hub.compose("down", "--volumes", "--remove-orphans", check=False)  # leftovers of an interrupted run
            hub.up()
        print(f"hubs up ({args.hub_image}, {os.cpu_count()} CPUs); measuring one at a time", flush=True)
        results = {hub.name: measure(hub, args.threads, args.seconds, args.idle) for hub in hubs}
    finally:
        for hub in hubs:
            hub.teardown()
    report(results, args.threads, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
