"""On a real GPU host: the platform's metrics carry NVML's utilisation and memory for every
device the hub leases, and the admin page shows them (what no test without a GPU can show).
Fixtures and how to run: conftest.py beside this. Not run where no GPU is (make test deselects it)."""

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .test_gpu_leases import hub_container

pytestmark = pytest.mark.gpu


def test_metrics_report_nvml_utilisation_and_memory_of_every_device(gpu_deployment, gpus_of_host, docker_client):
    code, out = hub_container(docker_client).exec_run(["cat", "/srv/jupyterhub/data/secrets/metrics_token"])
    assert code == 0, out.decode()
    headers = {"Authorization": f"token {out.decode().strip()}"}
    deadline, samples = time.monotonic() + 60, {}
    while time.monotonic() < deadline and ("gpuhub_gpus_total", ()) not in samples:
        r = requests.get(f"{gpu_deployment.base_url}/hub/metrics", headers=headers, timeout=30)
        assert r.status_code == 200, r.text[:300]
        families = text_string_to_metric_families(r.text)
        samples = {(s.name, tuple(s.labels.values())): s.value for f in families for s in f.samples}
        time.sleep(2)  # the first scrape starts the first snapshot
    assert samples[("gpuhub_gpus_total", ())] == len(gpus_of_host)
    for gpu in gpus_of_host:
        used = samples[("gpuhub_gpu_memory_used_bytes", (gpu.id,))]
        assert used >= 0 and (gpu.memory_mib is None or used <= gpu.memory_mib * 1024 * 1024)
        if not gpu.id.startswith("MIG-"):  # NVML reports no utilisation for MIG instances
            assert 0 <= samples[("gpuhub_gpu_utilization_percent", (gpu.id,))] <= 100
