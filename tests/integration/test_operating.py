"""Operating the lab (issue 11), for real: the GPU-hours ledger across a hub restart and a
`docker rm`, `hubctl usage`, /hub/metrics parsed with prometheus_client's parser, a real
Prometheus (compose profile `metrics`) scraping it, and the admin page /hub/gpus (403 for
others, Chromium with a screenshot in .build/screenshots).

A deployment of its own, PREFIX-ops on PORT+940 (its Prometheus on PORT+941).
"""

import json
import re
import time
from datetime import datetime

import pytest
import requests

from spawner import metrics
from spawner.labels import LABEL_GPUS, LABEL_LEASED_AT, LABEL_USER
from tests.browser.conftest import page, playwright  # noqa: F401 (fixtures: Chromium)
from tests.browser.test_browser import log_in
from tests.deployment import (
    PORT,
    PREFIX,
    ROOT,
    TAG,
    Deployment,
    api,
    create_user,
    exec_as_user,
    user_containers,
    wait_running,
    wait_until,
)
from tests.hubclient import Browser

pytestmark = pytest.mark.integration

PROMETHEUS = f"http://127.0.0.1:{PORT + 941}"
OPS = Deployment(
    f"{PREFIX}-ops",
    PORT + 940,
    COMPOSE_PROFILES="metrics",
    PROMETHEUS_IMAGE=f"gpuhub/prometheus:{TAG}",
    PROMETHEUS_PORT=str(PORT + 941),
)


@pytest.fixture(scope="module")
def ops(docker_client):
    with OPS.running(docker_client) as password:
        yield {"admin": OPS.admin_api(), "password": password}


@pytest.fixture(scope="module")
def ada(ops, docker_client):
    """A user holding one GPU: (name, the leased GPU id, its container)."""
    assert api(ops["admin"], "POST", "/users/ada").status_code == 201
    assert api(ops["admin"], "POST", "/users/ada/server", json={"profile": "gpu-1"}).status_code in (201, 202)
    wait_running(ops["admin"], "ada")
    [container] = user_containers(docker_client, "ada", OPS.prefix)
    return "ada", container.labels[LABEL_GPUS], container


@pytest.fixture(scope="module")
def metrics_token(ops):
    return OPS.hub_file("/srv/jupyterhub/data/secrets/metrics_token")


def test_metrics_need_the_read_metrics_scope(ops, metrics_token):
    url = f"{OPS.base_url}/hub/metrics"
    assert requests.get(url, timeout=30).status_code == 403
    assert api(ops["admin"], "POST", "/users/nosy").status_code == 201
    r = api(ops["admin"], "POST", "/users/nosy/tokens", json={})
    assert r.status_code == 201, r.text
    user_token = r.json()["token"]
    assert requests.get(url, headers={"Authorization": f"token {user_token}"}, timeout=30).status_code == 403
    assert "jupyterhub_" in requests.get(url, headers={"Authorization": f"token {metrics_token}"}, timeout=30).text


def engine_leases(docker_client) -> set[tuple[str, str]]:
    """(user, GPU) of every lease on the engine: the spawner's pool, which other suites' servers share."""
    containers = docker_client.containers.list(all=True, filters={"label": LABEL_GPUS})
    return {(c.labels.get(LABEL_USER, ""), gpu) for c in containers for gpu in c.labels[LABEL_GPUS].split(",")}


def test_metrics_match_the_real_leases(ada, docker_client):
    user, gpu, _ = ada

    def agreeing():
        before, found, after = engine_leases(docker_client), OPS.metrics(), engine_leases(docker_client)
        held = {g for _, g in before if g in {"0", "1", "2", "3"}}
        ages = {(dict(key[1])["user"], dict(key[1])["gpu"]) for key in found if key[0] == "gpuhub_lease_age_seconds"}
        # a snapshot taken before the last change is served until the next refresh: wait for a fresh one
        ok = before == after == ages and found.get(("gpuhub_gpus_leased", ())) == len(held)
        return (found, held) if ok else None

    found, held = wait_until("metrics agreeing with Docker's leases", agreeing)
    assert gpu in held
    assert found[("gpuhub_gpus_total", ())] == 4
    assert found[("gpuhub_gpus_free", ())] == 4 - len(held)
    age = found[("gpuhub_lease_age_seconds", (("gpu", gpu), ("user", user)))]
    assert 0 <= age < 600
    # no NVML in the hub here: no per-device series (a GPU host's are checked by make test-gpu)
    assert not [key for key in found if key[0] in ("gpuhub_gpu_utilization_percent", "gpuhub_gpu_memory_used_bytes")]


def test_workspace_bytes_are_measured_from_dockers_disk_usage(ada, docker_client):
    # the hub measures every 10 minutes; the same function, called here, reads the same engine
    exec_as_user(ada[2], "head -c 3000000 /dev/zero > ~/blob")
    assert metrics.workspace_bytes(docker_client, OPS.prefix)["ada"] >= 3_000_000


def test_prometheus_scrapes_the_hub(ada):
    def query(expr):
        r = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
        return r.json()["data"]["result"] if r.ok else []

    def ready():
        try:
            return query('up{job="gpuhub"} == 1') and query("gpuhub_gpus_leased >= 1")
        except requests.ConnectionError:
            return None

    result = wait_until("Prometheus scraping the hub", ready, timeout=90)
    assert result[0]["metric"]["__name__"] == "gpuhub_gpus_leased"
    assert query("gpuhub_gpus_total")[0]["value"][1] == "4"


def test_gpu_page_is_for_admins_only_and_changes_nothing(ops, ada):
    anonymous = requests.get(f"{OPS.base_url}/hub/gpus", timeout=30, allow_redirects=False)
    assert anonymous.status_code == 302 and "/hub/login" in anonymous.headers["Location"]
    name, password = create_user(on=OPS)
    browser = Browser(OPS.base_url)
    assert browser.login(name, password).ok
    assert browser.s.get(browser.url("/hub/gpus"), timeout=30).status_code == 403
    assert "/hub/gpus" not in browser.s.get(browser.url("/hub/home"), timeout=30).text  # no link either
    # a cross-site form (no _xsrf) is refused before anything runs; the page itself is GET-only
    admin = Browser(OPS.base_url)
    assert admin.login("admin", ops["password"]).ok
    assert admin.s.post(admin.url("/hub/gpus"), data={"gpu": ada[1]}, timeout=30).status_code in (403, 405)
    assert admin.s.get(admin.url("/hub/gpus"), timeout=30).status_code == 200
    assert 'href="/hub/gpus"' in admin.s.get(admin.url("/hub/home"), timeout=30).text  # in the admin's navigation
    assert [c.name for c in user_containers(ada[2].client, "ada", OPS.prefix)] == [ada[2].name]


def test_gpu_page_in_chromium_shows_the_holder_and_the_chart(ops, ada, page):  # noqa: F811
    user, gpu, _ = ada
    log_in(page, "admin", ops["password"], OPS.base_url)
    page.goto(f"{OPS.base_url}/hub/gpus")
    row = page.locator("#gpus tbody tr", has=page.locator("td.gpu", has_text=re.compile(f"^{gpu}$")))
    assert row.locator("td.holder").inner_text().strip() == user
    assert row.locator("td.since").inner_text().strip().endswith("UTC")
    free = page.locator("#gpus td.holder", has_text=re.compile("^free$")).count()
    assert free == 4 - len({g for _, g in engine_leases(ada[2].client)})

    def bar():
        page.reload()
        return page.locator("#gpu-hours text", has_text=user).count()

    wait_until("a bar for ada in the chart", bar)
    shots = ROOT / ".build/screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shots / "gpus-admin-page.png", full_page=True)


def usage_of(user: str) -> dict:
    rows = json.loads(OPS.hubctl("usage", "--json").stdout)
    return next((row for row in rows if row["user"] == user), {})


def test_ledger_survives_a_hub_restart_and_ends_a_server_removed_meanwhile(ops, ada, docker_client):
    user, _, container = ada
    leased_at = datetime.fromisoformat(container.labels[LABEL_LEASED_AT]).timestamp()
    wait_until("ada in hubctl usage", lambda: usage_of(user).get("server_hours"))
    OPS.run("scripts/compose", "stop", "hub")
    removed = time.time()
    container.remove(force=True)  # while nothing watches
    time.sleep(3)
    OPS.run("scripts/compose", "start", "hub")
    OPS.wait_healthy()
    expected = (removed - leased_at) / 3600
    first = wait_until("the ledger after the restart", lambda: usage_of(user))
    assert abs(first["gpu_hours"] - expected) < 10 / 3600, (first, expected)  # ended at the rm, within seconds
    assert first["server_hours"] == first["gpu_hours"]  # one GPU
    csv = OPS.hubctl("usage", "--csv", "--by", "profile").stdout.splitlines()
    assert csv[0] == "profile,gpu_hours,server_hours" and any(line.startswith("gpu-1,") for line in csv), csv
    OPS.run("scripts/compose", "restart", "hub")  # once more: nothing counted twice, nothing still running
    OPS.wait_healthy()
    time.sleep(12)  # a round of the ledger service
    assert usage_of(user) == first
