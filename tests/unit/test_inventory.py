"""GPU inventory: NVML, nvidia-smi and configured ids.

The host is reached only through the module's two documented seams: ``nvml=``
(FakeNvml of fakenvml.py, a stand-in for pynvml) and ``run=`` (a stand-in for running
nvidia-smi), passed in; or, for callers that pass nothing, the module
attributes ``load_nvml`` and ``run_nvidia_smi`` that the defaults resolve.
Nothing else of ``spawner.inventory`` is replaced: every test runs its code.
"""

import json
import subprocess

import pytest

from spawner import inventory
from spawner.inventory import Gpu

from .fakenvml import M0, M1, U0, U1, FakeNvml, FakeNVMLError, two_gpus


def no_smi(argv):
    raise FileNotFoundError("nvidia-smi is not on PATH")


def test_nvml_discovery_hands_out_uuids_and_keeps_index_for_display():
    nvml = two_gpus()
    gpus = inventory.discover(nvml=nvml, run=no_smi)
    assert gpus == [
        Gpu(U0, "NVIDIA H200", 143771, U0, "0"),
        Gpu(U1, "NVIDIA H200", 143771, U1, "1"),
    ]
    assert nvml.shutdowns == 1


def test_mig_gpu_is_replaced_by_its_instances_and_empty_slots_are_skipped():
    mig0 = {"uuid": M0, "name": "NVIDIA H200 MIG 1g.18gb", "total": 16384}
    mig2 = {"uuid": M1, "name": "NVIDIA H200 MIG 3g.71gb", "total": 71680}
    nvml = FakeNvml(
        [
            {"uuid": U0, "name": "NVIDIA H200", "total": 143771, "mig": [mig0, None, mig2]},
            {"uuid": U1, "name": "NVIDIA H200", "total": 143771, "mig": None},
        ]
    )
    gpus = inventory.discover(nvml=nvml, run=no_smi)
    assert [g.id for g in gpus] == [M0, M1, U1]
    assert [g.index for g in gpus] == ["0:0", "0:2", "1"]
    assert gpus[1].memory_mib == 71680 and gpus[1].name.endswith("3g.71gb")


def test_mig_mode_without_instances_yields_nothing_for_that_gpu(caplog):
    nvml = FakeNvml([{"uuid": U0, "name": "H200", "total": 1, "mig": [None, None]}])
    assert inventory.discover(nvml=nvml, run=no_smi) == []
    assert "no MIG instances" in caplog.text


def test_a_gpu_nvml_cannot_read_is_skipped(caplog):
    nvml = two_gpus()
    del nvml.devices[0]["uuid"]  # reading it fails like a GPU lost from the bus
    original = nvml.nvmlDeviceGetUUID

    def get_uuid(h):
        if "uuid" not in h:
            raise FakeNVMLError("GPU is lost")
        return original(h)

    nvml.nvmlDeviceGetUUID = get_uuid
    assert [g.id for g in inventory.discover(nvml=nvml, run=no_smi)] == [U1]
    assert "GPU 0 skipped: GPU is lost" in caplog.text


def test_nvml_init_failure_falls_back_to_nvidia_smi():
    seen = []

    def smi(argv):
        seen.append(list(argv))
        return f"0, {U0}, NVIDIA A100-SXM4-80GB, 81920, Disabled\n1, {U1}, Tesla T4, [N/A], [N/A]\n"

    source, gpus = inventory.discover_with_source(nvml=FakeNvml([], fail_init=True), run=smi)
    assert source == "nvidia-smi"
    assert seen == [inventory.SMI_QUERY]  # no MIG GPU: the listing is not needed
    assert gpus == [
        Gpu(U0, "NVIDIA A100-SXM4-80GB", 81920, U0, "0"),
        Gpu(U1, "Tesla T4", None, U1, "1"),
    ]


def smi_with_a_mig_gpu(argv):
    """nvidia-smi on a host whose GPU 0 is in MIG mode with two instances, GPU 1 not."""
    if argv == inventory.SMI_LIST:
        return (
            f"GPU 0: NVIDIA A100-SXM4-80GB (UUID: {U0})\n"
            f"  MIG 3g.40gb     Device  0: (UUID: {M0})\n"
            f"  MIG 2g.20gb     Device  1: (UUID: {M1})\n"
            f"GPU 1: NVIDIA A100-SXM4-80GB (UUID: {U1})\n"
        )
    assert argv == inventory.SMI_QUERY
    return f"0, {U0}, NVIDIA A100-SXM4-80GB, 81920, Enabled\n1, {U1}, NVIDIA A100-SXM4-80GB, 81920, Disabled\n"


def test_nvidia_smi_replaces_a_mig_gpu_by_its_instances():
    source, gpus = inventory.discover_with_source(nvml=None, run=smi_with_a_mig_gpu)
    assert source == "nvidia-smi"
    assert gpus == [
        Gpu(M0, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", None, M0, "0:0"),
        Gpu(M1, "NVIDIA A100-SXM4-80GB MIG 2g.20gb", None, M1, "0:1"),
        Gpu(U1, "NVIDIA A100-SXM4-80GB", 81920, U1, "1"),
    ]


def test_nvidia_smi_listing_before_r470_names_mig_instances_by_gpu_uuid_and_slices():
    legacy = "MIG-GPU-11111111-2222-3333-4444-555555555555/1/0"
    listing = f"GPU 0: A100-SXM4-40GB (UUID: {U0})\n  MIG 1g.5gb Device 0: (UUID: {legacy})\n"
    assert inventory.parse_smi_list(listing) == [Gpu(legacy, "A100-SXM4-40GB MIG 1g.5gb", None, legacy, "0:0")]


def test_an_unknown_nvidia_smi_listing_line_is_refused_not_guessed():
    with pytest.raises(ValueError, match="Unexpected nvidia-smi -L line"):
        inventory.parse_smi_list(f"GPU 0: A100 (UUID: {U0})\n  MIG ??? (no uuid)\n")


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError("no nvidia-smi"),
        subprocess.CalledProcessError(9, "nvidia-smi"),
        subprocess.TimeoutExpired("nvidia-smi", 30),
    ],
)
def test_failing_nvidia_smi_falls_back_to_configured_ids(failure):
    def smi(argv):
        raise failure

    source, gpus = inventory.discover_with_source(["0", U1], nvml=None, run=smi)
    assert source == "config"
    assert gpus == [Gpu("0", index="0"), Gpu(U1, uuid=U1)]


def test_unparseable_nvidia_smi_output_falls_back_to_configuration():
    four_columns = f"0, {U0}, Tesla K80, 11441\n"  # not the five SMI_QUERY asks for
    assert inventory.discover(["3"], nvml=None, run=lambda argv: four_columns) == [Gpu("3", index="3")]
    gpus = inventory.discover(["3"], nvml=None, run=lambda argv: "garbage line\n")
    assert gpus == [Gpu("3", index="3")]


def test_without_anything_and_no_configuration_the_inventory_is_empty():
    assert inventory.discover(None, nvml=None, run=None) == []


def test_default_runner_reports_a_missing_binary():
    with pytest.raises(FileNotFoundError):
        inventory.run_nvidia_smi(["gpuhub-no-such-binary", "-L"])


@pytest.mark.parametrize(
    "good",
    ["0", "12", U0, M0, "MIG-GPU-11111111-2222-3333-4444-555555555555/1/0", f" {U0} "],
)
def test_configured_id_forms_are_accepted(good):
    assert inventory.discover([good], nvml=None, run=None)[0].id == good.strip()


@pytest.mark.parametrize("bad", ["", "gpu0", "-1", "GPU-123", "MIG-GPU-11111111-2222-3333-4444-555555555555", "0,1", 0])
def test_configured_ids_are_validated(bad):
    with pytest.raises(ValueError, match="Invalid GPU id") as err:
        inventory.discover([bad], nvml=None, run=None)
    assert repr(bad) in str(err.value)


def test_duplicate_and_string_configuration_are_rejected():
    with pytest.raises(ValueError, match="configured twice"):
        inventory.discover(["1", "1"], nvml=None, run=None)
    with pytest.raises(ValueError, match="list of strings"):
        inventory.discover("0,1", nvml=None, run=None)


def test_configuration_restricts_a_discovered_inventory_by_index_or_uuid():
    assert [g.id for g in inventory.discover(["1"], nvml=two_gpus(), run=None)] == [U1]
    assert [g.id for g in inventory.discover([U0], nvml=two_gpus(), run=None)] == [U0]
    with pytest.raises(ValueError, match="'5' was not found"):
        inventory.discover(["5"], nvml=two_gpus(), run=None)
    with pytest.raises(ValueError, match="listed twice"):
        inventory.discover(["0", U0], nvml=two_gpus(), run=None)


def test_usage_reports_utilisation_and_memory_per_id():
    mig = {"uuid": M0, "name": "MIG 1g", "total": 16384, "used": 10}
    nvml = FakeNvml(
        [
            {"uuid": U0, "name": "H200", "total": 143771, "used": 2048, "util": 55},
            {"uuid": U1, "name": "H200", "total": 143771, "mig": [mig]},
        ]
    )
    assert inventory.usage(nvml=nvml) == {
        U0: {"utilization_percent": 55, "memory_used_mib": 2048, "memory_total_mib": 143771},
        M0: {"utilization_percent": None, "memory_used_mib": 10, "memory_total_mib": 16384},
    }
    assert nvml.shutdowns == 1


def test_usage_is_empty_without_nvml():
    assert inventory.usage(nvml=None) == {}
    assert inventory.usage(nvml=FakeNvml([], fail_init=True)) == {}


def test_main_prints_the_inventory_and_usage_as_json(capsys):
    assert inventory.main(["0"], nvml=two_gpus(), run=None) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["source"] == "nvml"
    assert printed["gpus"] == [{"id": U0, "name": "NVIDIA H200", "memory_mib": 143771, "uuid": U0, "index": "0"}]
    assert printed["usage"][U0] == {"utilization_percent": 7, "memory_used_mib": 500, "memory_total_mib": 143771}


def test_callers_that_pass_no_seam_reach_the_host_through_the_documented_names(monkeypatch):
    """What the spawner and hubctl call: discover(ids) and usage(), nothing injected."""
    nvml = two_gpus()
    monkeypatch.setattr(inventory, "load_nvml", lambda: nvml)
    assert [g.id for g in inventory.discover(["1"])] == [U1]
    assert set(inventory.usage()) == {U0, U1}

    monkeypatch.setattr(inventory, "load_nvml", lambda: None)
    monkeypatch.setattr(inventory, "run_nvidia_smi", smi_with_a_mig_gpu)
    assert inventory.discover_with_source()[0] == "nvidia-smi"

    monkeypatch.setattr(inventory, "run_nvidia_smi", no_smi)
    assert inventory.discover_with_source(["0", "1"]) == ("config", [Gpu("0", index="0"), Gpu("1", index="1")])


def test_main_reports_bad_ids_without_a_traceback(capsys):
    assert inventory.main(["not-a-gpu"], nvml=None, run=None) == 2
    assert "error: Invalid GPU id 'not-a-gpu'" in capsys.readouterr().err
