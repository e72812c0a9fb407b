"""`hubctl gpus` (spawner/hubctl/gpus.py): holders come from container labels,
the utilisation and memory columns from NVML, through inventory's NVML seam
(FakeNvml); no Docker engine, no hub."""

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from spawner.hubctl.gpus import cmd_gpus
from spawner.leases import lease_labels

from .fakenvml import M0, U0, U1, FakeNvml, two_gpus

SINCE = datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc)


class FakeContainers:
    """docker.from_env().containers as gpu_rows uses it: list(all=..., filters=...)."""

    def __init__(self, *containers):
        self.containers = containers

    def list(self, all, filters):
        assert all is True and filters == {"label": "gpuhub.gpus"}
        return list(self.containers)


def engine(*leases):
    """A Docker client holding one container per (user, gpu ids) lease."""
    found = [
        SimpleNamespace(name=f"gpuhub-{user}", labels=lease_labels(user, gpus, False, SINCE)) for user, gpus in leases
    ]
    return SimpleNamespace(containers=FakeContainers(*found))


def hubctl_gpus(nvml, client, gpus=(), json_output=False) -> str:
    api = SimpleNamespace(settings={"gpus": list(gpus)})
    return cmd_gpus(api, SimpleNamespace(json=json_output), client, nvml=nvml, run=None)


def cells(table: str) -> list[dict[str, str]]:
    """The rows of a hubctl table, cut at the header's column starts."""
    header, *lines = table.splitlines()
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)} for line in lines]


def test_the_table_fills_utilisation_and_memory_from_nvml():
    first, second = cells(hubctl_gpus(two_gpus(), engine(("alice", [U0]))))
    assert first == {
        "GPU": U0,
        "NAME": "NVIDIA H200",
        "USERS": "alice",
        "MODE": "exclusive",
        "SINCE": "2026-11-30T09:15:00+00:00",
        "UTIL": "7%",
        "MEM_USED": "500/143771 MiB",
    }
    # GPU 1 reports no utilisation (FakeNvml raises "Not Supported"): an empty cell, not 0%
    assert (second["USERS"], second["UTIL"], second["MEM_USED"]) == ("-", "", "0/143771 MiB")


def test_json_rows_carry_the_same_numbers_and_mig_instances_have_no_utilisation():
    mig = {"uuid": M0, "name": "NVIDIA H200 MIG 1g.18gb", "total": 16384, "used": 12}
    nvml = FakeNvml([{"uuid": U0, "name": "NVIDIA H200", "total": 143771, "mig": [mig]}])
    [row] = json.loads(hubctl_gpus(nvml, engine(("bob", [M0])), json_output=True))
    assert row["gpu"] == M0 and row["users"] == ["bob"] and row["containers"] == ["gpuhub-bob"]
    assert (row["memory_mib"], row["memory_used_mib"], row["utilization_percent"]) == (16384, 12, None)


def test_the_gpus_setting_filters_what_nvml_found():
    assert [row["GPU"] for row in cells(hubctl_gpus(two_gpus(), engine(), gpus=["1"]))] == [U1]


def test_without_nvml_the_configured_ids_are_listed_with_empty_usage_columns():
    first, second = cells(hubctl_gpus(None, engine(("carol", ["1"])), gpus=["0", "1"]))
    assert (first["GPU"], first["USERS"], first["UTIL"], first["MEM_USED"]) == ("0", "-", "", "")
    assert (second["GPU"], second["USERS"], second["MODE"]) == ("1", "carol", "exclusive")
    assert (second["UTIL"], second["MEM_USED"]) == ("", "")
