"""Spawn latency: this platform's spawner against stock DockerSpawner, side by side.

Runs two deployments of docker-compose.yml at once, from the built hub image
(`make images` after changing spawner/): "ours", the platform as configured
(jupyterhub_config.d/ included), servers started with {"profile": "cpu"}; and
"stock", DockerSpawner with the same image, network, naming, remove=True, home
volume and cpu-profile limits (benchmarks/stock/), started with {}. Both: the
single-user image --image, no idle culler, no pulls.

Each hub spawns and stops a warm-up user first, not counted. Then, for each N,
every spawn is timed from the REST start request (POST /hub/api/users/NAME/
server) to the hub calling the server ready (a 201 answer, else the "ready"
event of its progress stream; a "failed" event or a timeout is a failure):
  sequential  N users started one after another, ours and stock alternating;
  concurrent  N users started at once (threads), one hub after the other,
              which one goes first swapped from one N to the next.
Servers are stopped after each round. Both deployments (containers, volumes,
network with the bench prefixes) are removed at the end, also on errors and
Ctrl-C; the hubs' logs are kept in .build/bench-<name>-hub.log.

Reading the table: ok = spawns that became ready / spawns started; median and
p95 (nearest rank) in seconds; ratio = ours / stock (1.10: ours takes 10 %
longer). N=1 rows are single samples, +-30 % noise is usual there. Targets:
overhead (the median ratios' geometric mean, weighted by N) <= 1.10; all our
spawns at the largest concurrent N succeed. PASS/FAIL lines leave the exit
status alone: it is 0 unless the benchmark itself broke.

Usage: .venv/bin/python benchmarks/spawn.py [--n 1,10,25] [--image IMAGE]
"""

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
SPAWN_TIMEOUT = 300  # the hub gives up after start_timeout 120 + http_timeout 60; queueing on top
STOP_TIMEOUT = 120
HUB_TIMEOUT = 120
TARGET_RATIO = 1.10


class Deployment:
    """One compose project of the platform, driven through the hub's REST API."""

    def __init__(self, name: str, port: int, image: str, hub_image: str, options: dict, config_d: str):
        self.name, self.prefix, self.token, self.options = name, f"gpuhub-bench-{name}", "", options
        self.api_url = f"http://127.0.0.1:{port}/hub/api"
        self.env = {
            "COMPOSE_PROJECT_NAME": self.prefix, "GPUHUB_PREFIX": self.prefix, "GPUHUB_NETWORK": self.prefix,
            "HUB_PORT": str(port), "HUB_IMAGE": hub_image, "HUB_SETTINGS_FILE": "/dev/null",
            "GPUHUB_IMAGE": image, "GPUHUB_IDLE_TIMEOUT": "0", "GPUHUB_PULL_POLICY": "never", "HUB_CONFIG_D": config_d,
        }  # fmt: skip

    def sh(self, *argv: str, timeout: float = 300, check: bool = True) -> str:  # no GPUHUB_*/HUB_* of the caller
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUHUB_", "HUB_"))}
        proc = subprocess.run(argv, cwd=ROOT, env={**env, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def api(self, method: str, path: str, timeout: float = 60, **kw) -> requests.Response:
        auth = {"Authorization": f"token {self.token}"}
        return requests.request(method, self.api_url + path, headers=auth, timeout=timeout, **kw)

    def up(self) -> None:
        self.sh("scripts/compose", "up", "-d")
        deadline = time.monotonic() + HUB_TIMEOUT
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: hub not healthy after {HUB_TIMEOUT}s:\n{self.logs(80)}")
            time.sleep(1)
        self.token = self.sh("scripts/hubctl", "token", "--note", "benchmark", timeout=60).strip()

    def healthy(self) -> bool:
        try:
            return requests.get(self.api_url.replace("/api", "/health"), timeout=2).ok
        except requests.ConnectionError:
            return False

    def add_users(self, users: list[str]) -> None:
        self.api("POST", "/users", json={"usernames": users}).raise_for_status()

    def spawn(self, user: str) -> tuple[float | None, str]:
        """Seconds from the start request to ready (None on failure), and why it failed."""
        t0 = time.monotonic()
        try:
            r = self.api("POST", f"/users/{user}/server", json=self.options, timeout=SPAWN_TIMEOUT)
            if r.status_code != 202:  # 201: ready already
                return (time.monotonic() - t0, "") if r.ok else (None, f"{r.status_code} {r.text[:200]}")
            left = SPAWN_TIMEOUT - (time.monotonic() - t0)
            with self.api("GET", f"/users/{user}/server/progress", stream=True, timeout=(10, left)) as events:
                events.raise_for_status()
                for line in events.iter_lines(decode_unicode=True):  # a keepalive every 8 s
                    event = json.loads(line[5:]) if line.startswith("data:") else {}
                    if event.get("ready"):
                        return time.monotonic() - t0, ""
                    if event.get("failed"):
                        return None, event.get("message", "failed")
                    if time.monotonic() - t0 > SPAWN_TIMEOUT:
                        break
        except (requests.Timeout, requests.HTTPError) as e:
            return None, str(e)
        return None, f"not ready after {SPAWN_TIMEOUT}s"

    def stop_all(self, users: list[str]) -> None:
        def stop(user: str) -> None:
            self.api("DELETE", f"/users/{user}/server", timeout=STOP_TIMEOUT).raise_for_status()
            deadline = time.monotonic() + STOP_TIMEOUT
            while True:
                model = self.api("GET", f"/users/{user}").json()
                if not model.get("server") and not model.get("pending"):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: server of {user} not stopped after {STOP_TIMEOUT}s")
                time.sleep(0.5)

        run_threads(stop, users)

    def logs(self, tail: int | None = None) -> str:
        return self.sh("scripts/compose", "logs", "--no-color", f"--tail={tail or 'all'}", check=False, timeout=60)

    def teardown(self, client: docker.DockerClient) -> None:
        """Remove user containers (they hold the network), the project, then the user volumes."""
        for container in client.containers.list(all=True, filters={"name": self.prefix}):
            if container.name.startswith(self.prefix):
                container.remove(force=True)
        self.sh("scripts/compose", "down", "--volumes", "--remove-orphans", check=False, timeout=120)
        for volume in client.volumes.list(filters={"name": self.prefix}):
            if volume.name.startswith(self.prefix + "-"):
                volume.remove(force=True)


def run_threads(func, items: list) -> list:
    """func over items, all at once; the pool is not waited for on Ctrl-C (teardown ends its calls)."""
    pool = ThreadPoolExecutor(max_workers=max(1, len(items)))
    try:
        return list(pool.map(func, items))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]  # nearest rank


def measure(ours: Deployment, stock: Deployment, counts: list[int]) -> list[dict]:
    for d in (ours, stock):  # a first spawn per hub, not counted: one-off costs of a fresh hub
        d.add_users(["warmup"])
        if d.spawn("warmup")[0] is None:
            raise RuntimeError(f"{d.name}: the warm-up spawn failed:\n{d.logs(80)}")
        d.stop_all(["warmup"])
    cases = []
    for k, n in enumerate(counts):
        pair = (ours, stock) if k % 2 == 0 else (stock, ours)
        for mode in ("sequential", "concurrent"):
            users = [f"b{n}{mode[0]}{i:03d}" for i in range(n)]
            results: dict[str, list] = {d.name: [] for d in pair}
            for d in pair:
                d.add_users(users)
            if mode == "sequential":  # alternating, so that neither always goes second
                for i, user in enumerate(users):
                    for d in pair if i % 2 == 0 else pair[::-1]:
                        results[d.name].append(d.spawn(user))
                for d in pair:
                    d.stop_all(users)
            else:
                for d in pair:
                    results[d.name] = run_threads(d.spawn, users)
                    d.stop_all(users)
            cases.append({"n": n, "mode": mode, **results})
            print(f"  N={n} {mode}: done", flush=True)
    return cases


def report(cases: list[dict]) -> None:
    print(f"\n{'case':<16}{'ok ours':>8}{'ok stock':>9} |{'median ours':>12}{'stock':>7}{'ratio':>7} |"
          f"{'p95 ours':>9}{'stock':>7}{'ratio':>7}")  # fmt: skip
    ratios, errors = [], []
    for case in cases:
        times = {name: [t for t, _ in case[name] if t is not None] for name in ("ours", "stock")}
        for name in ("ours", "stock"):
            errors += [f"{name} N={case['n']} {case['mode']}: {why}" for t, why in case[name] if t is None]
        ok = [f"{len(times[name])}/{len(case[name])}" for name in ("ours", "stock")]
        label = f"N={case['n']} {case['mode']}"
        line = f"{label:<16}{ok[0]:>8}{ok[1]:>9}"
        if times["ours"] and times["stock"]:
            (m1, m2), (q1, q2) = [(stat(times["ours"]), stat(times["stock"])) for stat in (statistics.median, p95)]
            line += f" |{m1:>12.2f}{m2:>7.2f}{m1 / m2:>7.2f} |{q1:>9.2f}{q2:>7.2f}{q1 / q2:>7.2f}"
            ratios.append((m1 / m2, case["n"]))
        print(line)
    for error in errors:
        print(f"  failed: {error}")
    weight = sum(n for _, n in ratios)
    overhead = math.exp(sum(math.log(r) * n for r, n in ratios) / weight) if ratios else math.inf
    print(f"\n{'PASS' if overhead <= TARGET_RATIO else 'FAIL'}: overhead ours/stock {overhead:.2f} (median "
          f"ratios, geometric mean weighted by N), target <= {TARGET_RATIO:.2f}")  # fmt: skip
    top = max(c["n"] for c in cases)
    failed = sum(t is None for c in cases if c["n"] == top and c["mode"] == "concurrent" for t, _ in c["ours"])
    print(f"{'PASS' if not failed else 'FAIL'}: {top} concurrent spawns of ours, {failed} failed, target 0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,10,25", help="user counts, comma-separated (default 1,10,25)")
    parser.add_argument("--image", default=f"gpuhub/singleuser-standin:{VERSION}", help="single-user image")
    parser.add_argument("--hub-image", default=f"gpuhub/hub:{VERSION}", help="hub image (make images builds it)")
    args = parser.parse_args()
    counts = [int(n) for n in args.n.split(",") if n.strip()]
    client = docker.from_env()
    for image in (args.image, args.hub_image):
        client.images.get(image)  # ImageNotFound: run `make images`
    deployments = [
        Deployment("ours", 18100, args.image, args.hub_image, {"profile": "cpu"}, "./jupyterhub_config.d"),
        Deployment("stock", 18200, args.image, args.hub_image, {}, "./benchmarks/stock"),
    ]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: teardown runs in `finally`
    try:
        for d in deployments:
            d.teardown(client)  # leftovers of an interrupted run
        for d in deployments:
            d.up()
        print(f"hubs up (ours :18100, stock :18200), image {args.image}; N = {counts}", flush=True)
        report(measure(*deployments, counts))
    finally:
        (ROOT / ".build").mkdir(exist_ok=True)
        for d in deployments:
            (ROOT / f".build/bench-{d.name}-hub.log").write_text(d.logs())
            d.teardown(client)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: both deployments removed", file=sys.stderr)
        sys.exit(130)
