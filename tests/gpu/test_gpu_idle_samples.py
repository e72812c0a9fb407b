"""On a real GPU host: GPU-idle reclaim's NVML source, read in the hub container
(where the service runs), gives SM and memory activity for every whole device
the hub leases (NVML reports no rates for MIG instances: those count as busy)."""

import json

import pytest

from .test_gpu_leases import hub_container

pytestmark = pytest.mark.gpu

READ = (
    "import json; from spawner.gpuidle import NvmlSamples; "
    "print(json.dumps({g: vars(s) for g, s in NvmlSamples().read().items()}))"
)


def test_nvml_samples_cover_every_whole_device_as_percentages(gpu_deployment, docker_client, gpus_of_host):
    code, out = hub_container(docker_client).exec_run(["python3", "-c", READ])
    assert code == 0, out.decode()
    samples = json.loads(out)
    whole = {gpu.id for gpu in gpus_of_host if gpu.id.startswith("GPU-")}
    assert whole <= set(samples), f"no sample for {sorted(whole - set(samples))}"
    for gpu, sample in samples.items():
        assert 0 <= sample["sm"] <= 100 and 0 <= sample["memory"] <= 100, (gpu, sample)
