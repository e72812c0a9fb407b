"""FakeNvml: the stand-in for pynvml that tests hand to ``spawner.inventory``'s
NVML seam (the ``nvml=`` argument, or ``inventory.load_nvml``).

It has the slice of pynvml's names that inventory.py calls, backed by plain
dicts: ``{"uuid", "name", "total" (MiB), "used" (MiB), "util" (%), "mem_util" (%), "mig"}``,
where ``"mig"`` is absent (MIG not supported), None (MIG disabled) or the
list of MIG slots (a dict per instance, None for an empty slot). A value may
be bytes, as old pynvml versions return.
"""

from types import SimpleNamespace

U0 = "GPU-11111111-2222-3333-4444-555555555555"
U1 = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
M0 = "MIG-0a0a0a0a-1b1b-2c2c-3d3d-4e4e4e4e4e4e"
M1 = "MIG-9f9f9f9f-8e8e-7d7d-6c6c-5b5b5b5b5b5b"
MIB = 1024 * 1024


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """pynvml as far as inventory.py uses it; ``shutdowns`` counts nvmlShutdown calls."""

    NVMLError = FakeNVMLError
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, devices, fail_init=False):
        self.devices = devices
        self.fail_init = fail_init
        self.shutdowns = 0

    def nvmlInit(self):
        if self.fail_init:
            raise FakeNVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.devices[i]

    def nvmlDeviceGetUUID(self, h):
        return h["uuid"]

    def nvmlDeviceGetName(self, h):
        return h["name"]

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=h["total"] * MIB, used=h.get("used", 0) * MIB)

    def nvmlDeviceGetUtilizationRates(self, h):
        if "util" not in h:
            raise FakeNVMLError("Not Supported")
        return SimpleNamespace(gpu=h["util"], memory=h.get("mem_util", 0))

    def nvmlDeviceGetMigMode(self, h):
        if "mig" not in h:
            raise FakeNVMLError("Not Supported")
        return [1 if h["mig"] is not None else 0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return len(h["mig"])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, slot):
        if h["mig"][slot] is None:
            raise FakeNVMLError("Not Found")
        return h["mig"][slot]


def two_gpus():
    """GPU 0 in use (7%, 500 MiB) and GPU 1 with MIG disabled, its strings as bytes."""
    return FakeNvml(
        [
            {"uuid": U0, "name": "NVIDIA H200", "total": 143771, "used": 500, "util": 7},
            # pynvml may hand back bytes on old versions; they must be decoded
            {"uuid": U1.encode(), "name": b"NVIDIA H200", "total": 143771, "mig": None},
        ]
    )
