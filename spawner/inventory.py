"""GPU inventory: which devices this host can lease, and how busy they are.

This is the platform's one discovery path. In the compose deployment it runs
inside the hub container, which reads the host's driver through NVML where the
engine has the NVIDIA container runtime (``scripts/up`` then adds
``docker-compose.nvidia.yml``: every GPU and MIG device, the ``utility``
capability only); elsewhere the hub sees no driver and the ``gpus`` setting is
the inventory.

Discovery order: NVML (``pynvml`` from the ``nvidia-ml-py`` package), then
``nvidia-smi``, then the ids an admin configured. Discovered devices are
handed to Docker by UUID (stable across reboots); the index is kept for
display. A GPU in MIG mode is represented by its MIG instances, never by the
parent device, whichever of NVML and nvidia-smi found it.

Seams, the two ways this module reaches the host (production code passes
neither; tests replace them, never the functions under test):

- **NVML**: the ``nvml`` argument of ``discover``, ``discover_with_source``,
  ``usage`` and ``main``: a module with pynvml's names (``nvmlInit``,
  ``nvmlDeviceGetCount``, ``NVMLError``...), or None for "no NVML".
  Default ``AUTO``: what ``load_nvml()`` returns (pynvml if installed).
- **nvidia-smi**: the ``run`` argument: a callable ``argv -> stdout`` that
  raises OSError or SubprocessError on failure, or None for "no nvidia-smi".
  Default ``AUTO``: ``run_nvidia_smi``.

``AUTO`` is resolved when a function is called, from the module attributes
``load_nvml`` and ``run_nvidia_smi``: a test of code that calls ``discover``
without arguments (the spawner, hubctl) replaces those two names, and only
those, to stand for a host with or without a driver.

``python -m spawner.inventory`` prints what was found as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()  # a seam's default: the real host (see the module docstring)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ID_PATTERN = re.compile(rf"^(?:\d+|GPU-{_UUID}|MIG-{_UUID}|MIG-GPU-{_UUID}/\d+/\d+)$")
SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,mig.mode.current",
    "--format=csv,noheader,nounits",
]
SMI_LIST = ["nvidia-smi", "-L"]  # the only listing that names MIG instances
# "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-...)" and, under it,
# "  MIG 3g.40gb     Device  1: (UUID: MIG-...)" (MIG-GPU-<uuid>/<gi>/<ci> before R470)
_SMI_GPU_LINE = re.compile(r"^GPU (\d+): (.*) \(UUID: (GPU-[^)\s]+)\)$")
_SMI_MIG_LINE = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)$")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Gpu:
    """One leasable device. ``id`` is the string handed to Docker."""

    id: str
    name: str = ""
    memory_mib: int | None = None
    uuid: str | None = None
    index: str | None = None  # for display: "0", or "0:1" for MIG instance 1 of GPU 0


def validate_ids(ids: Sequence[str]) -> list[str]:
    """Check configured ids (index, GPU-/MIG- UUID, legacy MIG-GPU-<uuid>/<gi>/<ci>)."""
    if isinstance(ids, str):
        raise ValueError(f"GPU ids must be a list of strings, not the string {ids!r}")
    seen: list[str] = []
    for raw in ids:
        if not isinstance(raw, str) or not _ID_PATTERN.match(raw.strip()):
            raise ValueError(
                f"Invalid GPU id {raw!r}: expected an index like '0', 'GPU-<uuid>', "
                "'MIG-<uuid>' or 'MIG-GPU-<uuid>/<gi>/<ci>'"
            )
        gpu_id = raw.strip()
        if gpu_id in seen:
            raise ValueError(f"GPU id {gpu_id!r} is configured twice")
        seen.append(gpu_id)
    return seen


# -- NVML ------------------------------------------------------------------


def load_nvml() -> Any:
    """The NVML seam's default: the ``pynvml`` module, or None where it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _nvml(nvml: Any) -> Any:
    return load_nvml() if nvml is AUTO else nvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _mib(nvml: Any, handle: Any) -> int | None:
    try:
        return int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // _MIB
    except nvml.NVMLError:
        return None


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:  # not supported on this GPU
        return False
    return bool(current == nvml.NVML_DEVICE_MIG_ENABLE)


def _mig_handles(nvml: Any, handle: Any) -> list[tuple[int, Any]]:
    found = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            found.append((slot, nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)))
        except nvml.NVMLError:  # empty slot
            continue
    return found


def _nvml_devices(nvml: Any) -> list[tuple[Gpu, Any]]:
    """Every leasable device with its NVML handle (caller holds nvmlInit)."""
    devices = []
    for i in range(nvml.nvmlDeviceGetCount()):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            name = _text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as err:  # e.g. a GPU fallen off the bus: not leasable
            log.warning("GPU %s skipped: %s", i, err)
            continue
        if not _mig_enabled(nvml, handle):
            devices.append((Gpu(uuid, name, _mib(nvml, handle), uuid, str(i)), handle))
            continue
        migs = _mig_handles(nvml, handle)
        if not migs:
            log.warning("GPU %s (%s) is in MIG mode but has no MIG instances", i, uuid)
        for slot, mig in migs:
            mig_uuid = _text(nvml.nvmlDeviceGetUUID(mig))
            mig_name = _text(nvml.nvmlDeviceGetName(mig))
            gpu = Gpu(mig_uuid, mig_name, _mib(nvml, mig), mig_uuid, f"{i}:{slot}")
            devices.append((gpu, mig))
    return devices


def _from_nvml(nvml: Any) -> list[Gpu] | None:
    nvml = _nvml(nvml)
    if nvml is None:
        return None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as err:
        log.info("NVML unavailable (%s); trying nvidia-smi", err)
        return None
    try:
        return [gpu for gpu, _handle in _nvml_devices(nvml)]
    finally:
        nvml.nvmlShutdown()


# -- nvidia-smi --------------------------------------------------------------


def run_nvidia_smi(argv: Sequence[str]) -> str:
    """The nvidia-smi seam's default: run it with a timeout and return stdout."""
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not on PATH")
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def parse_smi(output: str) -> list[tuple[Gpu, bool]]:
    """Parse ``SMI_QUERY`` output (index, uuid, name, memory.total in MiB,
    mig.mode.current): each physical GPU and whether it is in MIG mode."""
    gpus = []
    for line in output.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5 or not parts[0].isdigit() or not parts[1]:
            raise ValueError(f"Unexpected nvidia-smi line: {line!r}")
        memory = int(parts[-2]) if parts[-2].isdigit() else None
        name = ", ".join(parts[2:-2])
        gpus.append((Gpu(parts[1], name, memory, parts[1], parts[0]), parts[-1] == "Enabled"))
    return gpus


def parse_smi_list(output: str) -> list[Gpu]:
    """The leasable devices of ``nvidia-smi -L`` output: each GPU, or, for a GPU
    with MIG instances listed under it, those instances instead (no memory)."""
    devices: list[Gpu] = []
    parent: Gpu | None = None
    parent_has_migs = False
    for line in output.splitlines():
        if not line.strip():
            continue
        gpu_line, mig_line = _SMI_GPU_LINE.match(line), _SMI_MIG_LINE.match(line)
        if gpu_line:
            index, name, uuid = gpu_line.groups()
            parent, parent_has_migs = Gpu(uuid, name, None, uuid, index), False
            devices.append(parent)
        elif mig_line and parent is not None:
            profile, slot, uuid = mig_line.groups()
            if not parent_has_migs:
                devices.remove(parent)
                parent_has_migs = True
            devices.append(Gpu(uuid, f"{parent.name} MIG {profile}", None, uuid, f"{parent.index}:{slot}"))
        else:
            raise ValueError(f"Unexpected nvidia-smi -L line: {line!r}")
    return devices


def _from_smi(run: Callable[[Sequence[str]], str] | None) -> list[Gpu] | None:
    run = run_nvidia_smi if run is AUTO else run
    if run is None:
        return None
    try:
        gpus = parse_smi(run(SMI_QUERY))
        migs = parse_smi_list(run(SMI_LIST)) if any(mig for _gpu, mig in gpus) else []
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        log.info("nvidia-smi unavailable (%s); using configured GPU ids", err)
        return None
    devices = []
    for gpu, mig in gpus:
        if not mig:
            devices.append(gpu)
            continue
        instances = [m for m in migs if m.index.split(":")[0] == gpu.index]
        if not instances:
            log.warning("GPU %s (%s) is in MIG mode but has no MIG instances", gpu.index, gpu.uuid)
        devices.extend(instances)
    return devices


# -- the inventory -------------------------------------------------------------


def _configured(gpu_id: str) -> Gpu:
    if gpu_id.isdigit():
        return Gpu(gpu_id, index=gpu_id)
    return Gpu(gpu_id, uuid=gpu_id if "/" not in gpu_id else None)


def _restrict(found: list[Gpu], wanted: list[str]) -> list[Gpu]:
    """Keep the discovered devices an admin listed (by id, UUID or index), in that order."""
    chosen: list[Gpu] = []
    for gpu_id in wanted:
        match = [g for g in found if gpu_id in (g.id, g.uuid, g.index)]
        if not match:
            known = ", ".join(f"{g.index}={g.id}" for g in found) or "none"
            raise ValueError(f"Configured GPU {gpu_id!r} was not found (discovered: {known})")
        if match[0] in chosen:
            raise ValueError(f"Configured GPU {gpu_id!r} names a device listed twice")
        chosen.append(match[0])
    return chosen


def discover_with_source(
    configured: Sequence[str] | None = None,
    *,
    nvml: Any = AUTO,
    run: Callable[[Sequence[str]], str] | None = AUTO,
) -> tuple[str, list[Gpu]]:
    """Like ``discover`` and also says where the list came from: nvml, nvidia-smi, config."""
    wanted = validate_ids(configured or [])
    source, found = "nvml", _from_nvml(nvml)
    if found is None:
        source, found = "nvidia-smi", _from_smi(run)
    if found is None:
        return "config", [_configured(gpu_id) for gpu_id in wanted]
    return source, (_restrict(found, wanted) if wanted else found)


def discover(
    configured: Sequence[str] | None = None,
    *,
    nvml: Any = AUTO,
    run: Callable[[Sequence[str]], str] | None = AUTO,
) -> list[Gpu]:
    """The leasable GPUs, in a stable order. Blocking (NVML, a subprocess):
    call it off the event loop.

    When discovery works and ``configured`` is non-empty, only the listed
    devices are kept (each entry matches an id, UUID or index); an entry that
    matches nothing raises ValueError. Without discovery the configured ids
    themselves are the inventory.
    """
    return discover_with_source(configured, nvml=nvml, run=run)[1]


def _per_device(nvml: Any, read: Callable[[Any, Gpu, Any], Any]) -> dict[str, Any]:
    """{device id: read(nvml, gpu, handle)} over NVML's devices, leaving out those
    read returns None for; {} without NVML."""
    nvml = _nvml(nvml)
    if nvml is None:
        return {}
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return {}
    try:
        found = ((gpu.id, read(nvml, gpu, handle)) for gpu, handle in _nvml_devices(nvml))
        return {gpu_id: value for gpu_id, value in found if value is not None}
    finally:
        nvml.nvmlShutdown()


def _usage_of(nvml: Any, gpu: Gpu, handle: Any) -> dict[str, int | None]:
    try:
        util: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except nvml.NVMLError:  # not reported for MIG instances
        util = None
    try:
        used: int | None = int(nvml.nvmlDeviceGetMemoryInfo(handle).used) // _MIB
    except nvml.NVMLError:
        used = None
    return {"utilization_percent": util, "memory_used_mib": used, "memory_total_mib": gpu.memory_mib}


def usage(*, nvml: Any = AUTO) -> dict[str, dict[str, int | None]]:
    """Utilisation and memory per device id (same ids as ``discover``); {} without NVML."""
    return _per_device(nvml, _usage_of)


def _activity_of(nvml: Any, _gpu: Gpu, handle: Any) -> tuple[int, int] | None:
    try:
        rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    except nvml.NVMLError:
        return None
    return (int(rates.gpu), int(rates.memory))


def activity(*, nvml: Any = AUTO) -> dict[str, tuple[int, int]]:
    """(SM %, memory-controller %) per device id, as NVML samples them; {} without NVML.
    Devices NVML reports no rates for (MIG instances) are left out: GPU-idle reclaim
    counts a device with no sample as busy."""
    return _per_device(nvml, _activity_of)


def main(
    argv: Sequence[str] | None = None,
    *,
    nvml: Any = AUTO,
    run: Callable[[Sequence[str]], str] | None = AUTO,
) -> int:
    """Print the inventory (and usage) as JSON; ids given as arguments act as configuration."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        source, gpus = discover_with_source(args or None, nvml=nvml, run=run)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = {
        "source": source,
        "gpus": [dataclasses.asdict(g) for g in gpus],
        "usage": usage(nvml=nvml),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
