"""The platform's metrics (spawner/metrics.py) as Prometheus parses them, and the admin
page's pure parts (spawner/gpupage.py). The snapshot comes through the collector's
``measure`` seam here; the real one (Docker, NVML) is read in tests/integration/test_operating.py."""

import asyncio
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from spawner import culltally, gpupage, inventory, metrics
from spawner.leases import Lease

from .fakenvml import U0, U1, two_gpus

SINCE = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def snapshot(devices=None):
    held = [Lease("ada", ("0", "1"), SINCE, False, "jupyter-ada"), Lease("bob", ("2",), None, True, "jupyter-bob")]
    return metrics.Snapshot(
        taken=SINCE.timestamp() + 60, total=4, leased=3, free=1, device_ids=["0", "1", "2", "3"], held=held,
        lease_ages=[("ada", "0", 60.0), ("ada", "1", 60.0)], devices=devices or {},
    )  # fmt: skip


def scrape(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def measured(snap, sizes=None) -> metrics.PlatformCollector:
    collector = metrics.PlatformCollector(lambda: snap, lambda: sizes or {}, dict)

    async def refreshed():
        await collector.refresh()
        await collector._sizing  # started by the first refresh, not awaited by it

    asyncio.run(refreshed())
    return collector


def test_counts_lease_ages_and_workspaces_are_exposed():
    collector = measured(snapshot(), {"ada": 4096})
    assert not [key for key in scrape(collector) if key[0] == "gpuhub_workspace_soft_limit_bytes"]  # none set
    collector.soft_limit = 50 * 1024**3
    found = scrape(collector)
    assert found[("gpuhub_workspace_soft_limit_bytes", ())] == 50 * 1024**3
    assert found[("gpuhub_gpus_total", ())] == 4
    assert found[("gpuhub_gpus_leased", ())] == 3
    assert found[("gpuhub_gpus_free", ())] == 1
    assert found[("gpuhub_lease_age_seconds", (("gpu", "1"), ("user", "ada")))] == 60
    assert found[("gpuhub_workspace_bytes", (("user", "ada"),))] == 4096


def test_without_nvml_no_device_series_and_with_it_utilisation_and_bytes():
    assert not [key for key in scrape(measured(snapshot())) if key[0].startswith("gpuhub_gpu_")]
    nvml = {"0": {"utilization_percent": 37, "memory_used_mib": 2, "memory_total_mib": 80}}
    found = scrape(measured(snapshot(nvml)))
    assert found[("gpuhub_gpu_utilization_percent", (("gpu", "0"),))] == 37
    assert found[("gpuhub_gpu_memory_used_bytes", (("gpu", "0"),))] == 2 * 1024 * 1024


def test_nvml_usage_becomes_per_device_series_and_page_columns():
    nvml = two_gpus()  # GPU 0: 7 %, 500 MiB; GPU 1 reports no utilisation
    held = [Lease("ada", (U0,), SINCE, False, "jupyter-ada")]
    snap = metrics.snapshot_of([U0, U1], held, inventory.usage(nvml=nvml), SINCE.timestamp() + 30)
    found = scrape(measured(snap))
    assert (found[("gpuhub_gpus_leased", ())], found[("gpuhub_gpus_free", ())]) == (1, 1)
    assert found[("gpuhub_lease_age_seconds", (("gpu", U0), ("user", "ada")))] == 30
    assert found[("gpuhub_gpu_utilization_percent", (("gpu", U0),))] == 7
    assert found[("gpuhub_gpu_memory_used_bytes", (("gpu", U0),))] == 500 * 1024 * 1024
    row = gpupage.device_rows(snap)[0]
    assert (row["utilization"], row["memory_used_mib"], row["memory_total_mib"]) == (7, 500, 143771)


def test_nothing_is_measured_at_registration_or_served_before_the_first_snapshot():
    calls = []
    collector = metrics.PlatformCollector(lambda: calls.append(1) or snapshot(), dict, dict)
    assert scrape(collector) == {} and calls == []  # outside a running loop nothing is started


def test_culls_by_reason_are_a_counter_read_from_the_tally_at_each_scrape(tmp_path):
    tally = tmp_path / "culls.json"
    collector = metrics.PlatformCollector(snapshot, dict, lambda: culltally.read(tally), soft_limit=1024)
    assert scrape(collector) == {("gpuhub_workspace_soft_limit_bytes", ()): 1024}  # no snapshot yet, no culls
    culltally.record(tally, culltally.GPU_IDLE)
    culltally.record(tally, culltally.IDLE)
    culltally.record(tally, culltally.IDLE)
    found = scrape(collector)
    assert found[("gpuhub_culls_total", (("reason", "idle"),))] == 2
    assert found[("gpuhub_culls_total", (("reason", "gpu-idle"),))] == 1


def test_device_rows_name_holders_with_their_start_and_free_devices():
    rows = {row["gpu"]: row for row in gpupage.device_rows(snapshot())}
    assert rows["0"]["holders"] == [("ada", "2026-11-30 12:00 UTC")]
    assert rows["2"]["holders"] == [("bob", "")] and rows["2"]["shared"]
    assert rows["3"]["holders"] == []


def test_chart_bars_longest_first_scaled_and_idle_users_left_out():
    totals = {"ada": {"gpu_hours": 2.0}, "bob": {"gpu_hours": 8.0}, "cy": {"gpu_hours": 0.0}}
    bars = gpupage.chart_bars(totals)
    assert [(b["user"], b["width"]) for b in bars] == [("bob", gpupage.BAR_WIDTH), ("ada", gpupage.BAR_WIDTH // 4)]
