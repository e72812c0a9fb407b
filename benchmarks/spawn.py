"""Login storm: this platform (spawner + single-user image) against a stock deployment, side by side.

Runs two deployments of docker-compose.yml at once, from the built hub image
(`make images` after changing spawner/): "ours", the platform as configured
(jupyterhub_config.d/ included) with our single-user image --image, servers
started with {"profile": "cpu"}; and "stock", what a lab would otherwise run:
DockerSpawner with the same network, naming, remove=True, home volume and
cpu-profile limits (benchmarks/stock/) and a plainly pip-installed image of
the same JupyterHub/JupyterLab versions (benchmarks/stock-image/, built here
as --stock-image), started with {}. No idle culler, no pulls.

Each hub spawns and stops a warm-up user first, not counted. Then, for each N,
every spawn is timed from the REST start request (POST /hub/api/users/NAME/
server) to the hub calling the server ready (a 201 answer, else the "ready"
event of its progress stream; a "failed" event or a timeout is a failure):
  sequential  N users started one after another, ours and stock alternating;
              before they stop, the memory (RSS) of each idle server's container;
  concurrent  N users started at once (threads), one hub after the other,
              which one goes first swapped from one N to the next.
Then, unless --no-browser, one user per side in Chromium: from pressing
"Start" to the output of a first executed cell `1+1` in a new notebook.
Servers are stopped after each round. Both deployments (containers, volumes,
network with the bench prefixes) are removed at the end, also on errors and
Ctrl-C; the hubs' logs are kept in .build/<prefix>-<name>-hub.log.

Reading the table: ok = spawns that became ready / spawns started; median and
p95 (nearest rank) in seconds; ratio = ours / stock (0.50: ours takes half the
time). N=1 rows are single samples. Targets: the median at the largest
concurrent N at most half of stock's, all of our spawns there ready; the
median of our spawns started one at a time (every sequential spawn and N=1)
at most 1.5 s. PASS/FAIL lines leave the exit status alone: it is 0 unless
the benchmark itself broke.

Usage: .venv/bin/python benchmarks/spawn.py [--n 1,10,25] [--image IMAGE] [--prefix P --port PORT]
"""

import argparse
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
SPAWN_TIMEOUT = 300  # the hub gives up after start_timeout 120 + http_timeout 60; queueing on top
STOP_TIMEOUT = 120
HUB_TIMEOUT = 120
TARGET_STORM_RATIO = 0.5  # ours / stock, median at the largest concurrent N
TARGET_ALONE_SECONDS = 1.5  # ours, median of the spawns started one at a time
BROWSER_TIMEOUT_MS = 120_000
CHROMIUM = "/usr/bin/chromium"


class Deployment:
    """One compose project of the platform, driven through the hub's REST API."""

    def __init__(self, name: str, prefix: str, port: int, image: str, hub_image: str, options: dict, config_d: str):
        self.name, self.prefix, self.token, self.options = name, f"{prefix}-{name}", "", options
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base_url}/hub/api"
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

    def idle_rss(self, client: docker.DockerClient, users: list[str]) -> list[float]:
        """MiB of resident memory of each user's running server container (cgroup v1 rss, v2 anon)."""
        sizes = []
        for user in users:
            state = self.api("GET", f"/users/{user}").json().get("servers", {}).get("", {}).get("state", {})
            if not state.get("object_id"):
                continue  # its spawn failed
            stats = client.containers.get(state["object_id"]).stats(stream=False, one_shot=True)["memory_stats"]
            sizes.append(stats["stats"].get("rss", stats["stats"].get("anon", 0)) / 2**20)
        return sizes

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
        """Remove user containers (they hold the networks), the project, then the servers' own
        networks (a server still running at the end leaves its network) and the user volumes."""
        for container in client.containers.list(all=True, filters={"name": self.prefix}):
            if container.name.startswith(self.prefix):
                container.remove(force=True)
        self.sh("scripts/compose", "down", "--volumes", "--remove-orphans", check=False, timeout=120)
        for network in client.networks.list(names=[self.prefix]):
            if network.name.startswith(self.prefix + "-"):
                network.remove()
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


def measure(ours: Deployment, stock: Deployment, counts: list[int], client: docker.DockerClient) -> list[dict]:
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
            rss: dict[str, list] = {d.name: [] for d in pair}
            for d in pair:
                d.add_users(users)
            if mode == "sequential":  # alternating, so that neither always goes second
                for i, user in enumerate(users):
                    for d in pair if i % 2 == 0 else pair[::-1]:
                        results[d.name].append(d.spawn(user))
                for d in pair:
                    rss[d.name] = d.idle_rss(client, users)
                    d.stop_all(users)
            else:
                for d in pair:
                    results[d.name] = run_threads(d.spawn, users)
                    d.stop_all(users)
            cases.append({"n": n, "mode": mode, "rss": rss, **results})
            print(f"  N={n} {mode}: done", flush=True)
    return cases


def first_cell(d: Deployment, user: str) -> float:
    """Seconds in Chromium from pressing "Start" to the output of `1+1` in a new notebook."""
    from playwright.sync_api import sync_playwright

    invite = re.search(r"/hub/invite\?token=\S+", d.sh("scripts/hubctl", "users", "add", user, timeout=60))
    password = uuid.uuid4().hex
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(BROWSER_TIMEOUT_MS)
            page.goto(d.base_url + invite.group(0))  # the user sets a password, then logs in
            page.fill("input[name=password]", password)
            page.fill("input[name=password_confirmation]", password)
            with page.expect_navigation():
                page.press("input[name=password_confirmation]", "Enter")
            page.goto(f"{d.base_url}/hub/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("#login_submit")
            page.goto(f"{d.base_url}/hub/home")
            page.click("#start")
            if d.options:  # our options form: its "Start" is the press that counts
                page.wait_for_selector("form#spawn_form")
                t0 = time.monotonic()
                page.click("form#spawn_form [type=submit]")
            else:
                t0 = time.monotonic()  # stock starts on the home page's button
            # Under load, JupyterLab may report a stylesheet that loaded late in a
            # dialog that blocks the page: dismiss it, counted in the result's note.
            dialogs = []
            page.add_locator_handler(
                page.locator(".jp-Dialog"),
                lambda dialog: (dialogs.append(dialog.inner_text()), dialog.locator(".jp-mod-accept").click()),
            )
            page.wait_for_url(re.compile(rf"/user/{user}/lab"))
            page.click(".jp-LauncherCard[data-category='Notebook']")
            page.wait_for_selector("text=/\\| Idle$/")  # the status bar: its kernel is up, else the run is lost
            page.locator(".jp-Notebook .jp-Cell .cm-content").first.fill("1+1")
            page.keyboard.press("Shift+Enter")
            page.locator(".jp-OutputArea-output", has_text="2").first.wait_for()
            seconds = time.monotonic() - t0
            for text in dialogs:
                print(f"  {d.name}: dismissed a JupyterLab dialog: {' '.join(text.split())[:200]}")
            return seconds
        except Exception:
            page.screenshot(path=ROOT / f".build/{d.prefix}-first-cell.png")  # where it stopped
            raise
        finally:
            browser.close()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) / 2**20
    engine = docker.from_env().version()["Version"]
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} CPU cores ({cpu}), {mem:.0f} GiB RAM, {system}, Docker {engine}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_reference() -> float:
    """CPU seconds of a fixed Python loop: this host's speed now. Shared hosts vary by
    half from hour to hour; it makes absolute times of two runs comparable."""
    t0, total = time.process_time(), 0
    for i in range(5_000_000):
        total += i
    return time.process_time() - t0


def report(cases: list[dict], cells: dict[str, float | str]) -> None:
    print(f"\n{'case':<16}{'ok ours':>8}{'ok stock':>9} |{'median ours':>12}{'stock':>7}{'ratio':>7} |"
          f"{'p95 ours':>9}{'stock':>7}{'ratio':>7}")  # fmt: skip
    errors = []
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
        print(line)
    for error in errors:
        print(f"  failed: {error}")

    rss = {name: [mib for c in cases for mib in c["rss"].get(name, [])] for name in ("ours", "stock")}
    if rss["ours"] and rss["stock"]:
        m1, m2 = statistics.median(rss["ours"]), statistics.median(rss["stock"])
        print(f"\nidle server RSS, median MiB: ours {m1:.0f} ({len(rss['ours'])} servers), "
              f"stock {m2:.0f} ({len(rss['stock'])}), ratio {m1 / m2:.2f}")  # fmt: skip
    if cells:
        shown = {name: f"{v:.2f} s" if isinstance(v, float) else v for name, v in cells.items()}
        line = f"Start -> first executed cell in Chromium: ours {shown.get('ours')}, stock {shown.get('stock')}"
        if all(isinstance(v, float) for v in cells.values()) and len(cells) == 2:
            line += f", ratio {cells['ours'] / cells['stock']:.2f}"
        print(line)

    top = max(c["n"] for c in cases)
    storm = next(c for c in cases if c["n"] == top and c["mode"] == "concurrent")
    done = {name: [t for t, _ in storm[name] if t is not None] for name in ("ours", "stock")}
    failed = len(storm["ours"]) - len(done["ours"])
    ratio = statistics.median(done["ours"]) / statistics.median(done["stock"]) if all(done.values()) else math.inf
    print(f"\n{'PASS' if ratio <= TARGET_STORM_RATIO else 'FAIL'}: N={top} concurrent, median ours/stock "
          f"{ratio:.2f}, target <= {TARGET_STORM_RATIO:.2f}")  # fmt: skip
    print(f"{'PASS' if not failed else 'FAIL'}: {top} concurrent spawns of ours, {failed} failed, target 0")
    alone = [t for c in cases if c["mode"] == "sequential" or c["n"] == 1 for t, _ in c["ours"] if t is not None]
    median = statistics.median(alone) if alone else math.inf
    print(f"{'PASS' if median <= TARGET_ALONE_SECONDS else 'FAIL'}: spawns of ours started one at a time, "
          f"median {median:.2f} s over {len(alone)}, target <= {TARGET_ALONE_SECONDS:.1f} s")  # fmt: skip


def build_stock_image(tag: str, base: str) -> None:
    """benchmarks/stock-image on the given base; Docker's cache makes a rebuild instant."""
    if not (ROOT / ".build/extra-ca.crt").exists():
        raise RuntimeError(".build/extra-ca.crt is missing: run `make images` (scripts/build-images) first")
    argv = ["docker", "build", "-q", "-f", "benchmarks/stock-image/Dockerfile", "--build-arg", f"BASE_IMAGE={base}"]
    proc = subprocess.run([*argv, "-t", tag, "."], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"building {tag} failed:\n{proc.stdout}{proc.stderr}")


def main() -> int:
    tag = os.environ.get("GPUHUB_TAG") or VERSION
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,10,25", help="user counts, comma-separated (default 1,10,25)")
    parser.add_argument("--image", default=f"gpuhub/singleuser-standin:{tag}", help="our single-user image")
    parser.add_argument("--hub-image", default=f"gpuhub/hub:{tag}", help="hub image (make images builds it)")
    parser.add_argument(
        "--stock-image",
        default=f"gpuhub/bench-stock-singleuser:{tag}",
        help="stock side's image, built from benchmarks/stock-image; another is used as it is "
        "(the same as --image: spawner against spawner)",
    )
    parser.add_argument(
        "--base-image",
        default=os.environ.get("BASE_IMAGE", ""),
        help="base of the stock image (default: debian:bookworm-slim if present, else local/debian:bookworm)",
    )
    parser.add_argument("--prefix", default="gpuhub-bench", help="name prefix of both deployments")
    parser.add_argument("--port", type=int, default=18100, help="ours listens here, stock 100 above")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium first-cell timing")
    args = parser.parse_args()
    counts = [int(n) for n in args.n.split(",") if n.strip()]
    client = docker.from_env()
    for image in (args.image, args.hub_image):
        client.images.get(image)  # ImageNotFound: run `make images`
    if args.stock_image == parser.get_default("stock_image"):
        base = args.base_image or next(
            (b for b in ("debian:bookworm-slim", "local/debian:bookworm") if client.images.list(name=b)),
            "debian:bookworm-slim",
        )
        build_stock_image(args.stock_image, base)
    client.images.get(args.stock_image)
    deployments = [
        Deployment("ours", args.prefix, args.port, args.image, args.hub_image, {"profile": "cpu"},
                   "./jupyterhub_config.d"),
        Deployment("stock", args.prefix, args.port + 100, args.stock_image, args.hub_image, {},
                   "./benchmarks/stock"),
    ]  # fmt: skip
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: teardown runs in `finally`
    try:
        for d in deployments:
            d.teardown(client)  # leftovers of an interrupted run
        for d in deployments:
            d.up()
        print(f"machine: {machine()}")
        print(f"ours :{args.port} {args.image}; stock :{args.port + 100} {args.stock_image}; N = {counts}")
        print(f"load average before: {load()}; CPU reference: {cpu_reference():.2f} s", flush=True)
        started = time.monotonic()
        cases = measure(*deployments, counts, client)
        cells: dict[str, float | str] = {}
        if not args.no_browser:
            for d in deployments:
                try:
                    cells[d.name] = first_cell(d, f"web{uuid.uuid4().hex[:6]}")
                except Exception as e:  # reported, not fatal: the spawn figures stand
                    cells[d.name] = f"failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        print(f"load average after: {load()} ({time.monotonic() - started:.0f} s of measuring); "
              f"CPU reference: {cpu_reference():.2f} s")  # fmt: skip
        report(cases, cells)
    finally:
        (ROOT / ".build").mkdir(exist_ok=True)
        for d in deployments:
            (ROOT / f".build/{d.prefix}-hub.log").write_text(d.logs())
            d.teardown(client)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: both deployments removed", file=sys.stderr)
        sys.exit(130)
