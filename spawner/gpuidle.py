"""GPU activity samples and the rule that calls a lease idle.

Where samples come from is the one seam of GPU-idle reclaim:

- ``NvmlSamples``: NVML on a GPU host (through ``inventory.activity``, whose
  ``nvml`` argument is inventory's seam), SM and memory-controller activity in
  percent per device id;
- ``FileSamples``: a JSON file ``{"<gpu id>": {"sm": 0, "memory": 0}}`` that
  something else writes (the tests, or a site's exporter); the setting
  ``gpu_samples_file`` chooses it.

A device with no sample counts as busy: missing data never stops a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import inventory


@dataclass(frozen=True)
class Sample:
    sm: float  # percent of time a kernel ran
    memory: float  # percent of time device memory was read or written


class SampleError(ValueError):
    """The sample source answered with something that is not samples."""


def _percent(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise SampleError(f"{where}: expected a percentage 0..100, got {value!r}")
    return float(value)


def parse_samples(data: Any, where: str) -> dict[str, Sample]:
    if not isinstance(data, Mapping):
        raise SampleError(f"{where}: expected an object of GPU id: {{sm, memory}}")
    samples = {}
    for gpu, value in data.items():
        if not isinstance(value, Mapping):
            raise SampleError(f"{where}: GPU {gpu!r}: expected {{sm, memory}}")
        samples[str(gpu)] = Sample(_percent(value.get("sm"), f"{where} {gpu} sm"),
                                   _percent(value.get("memory"), f"{where} {gpu} memory"))  # fmt: skip
    return samples


class FileSamples:
    """Samples read from a JSON file at each round (the seam where no GPU is)."""

    def __init__(self, path: str):
        self.path = Path(path)

    def read(self) -> dict[str, Sample]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            return parse_samples(json.loads(text), str(self.path))
        except json.JSONDecodeError as e:
            raise SampleError(f"{self.path}: not JSON ({e})") from None


class NvmlSamples:
    """Samples from NVML: each device's SM and memory activity now."""

    def __init__(self, nvml: Any = inventory.AUTO):
        self.nvml = nvml

    def read(self) -> dict[str, Sample]:
        return {gpu: Sample(sm, memory) for gpu, (sm, memory) in inventory.activity(nvml=self.nvml).items()}


def source(samples_file: str) -> FileSamples | NvmlSamples:
    return FileSamples(samples_file) if samples_file else NvmlSamples()


def all_idle(gpus: Iterable[str], samples: Mapping[str, Sample], threshold: float) -> bool:
    """Every device of a lease below ``threshold`` percent in both SM and memory activity."""
    found = [samples.get(gpu) for gpu in gpus]
    return bool(found) and all(s is not None and s.sm < threshold and s.memory < threshold for s in found)


@dataclass(frozen=True)
class Verdict:
    action: str  # "keep", "warn" or "stop"
    idle_for: timedelta
    stop_at: datetime | None  # when it will be stopped, for "warn" and "stop"


def judge(idle_since: datetime | None, now: datetime, timeout: int, warning: int) -> Verdict:
    """What to do with a lease idle since ``idle_since`` (None: in use): warn
    ``warning`` seconds before ``timeout``, stop at it."""
    if idle_since is None:
        return Verdict("keep", timedelta(0), None)
    idle_for, stop_at = now - idle_since, idle_since + timedelta(seconds=timeout)
    if idle_for >= timedelta(seconds=timeout):
        return Verdict("stop", idle_for, stop_at)
    if idle_for >= timedelta(seconds=max(0, timeout - warning)):
        return Verdict("warn", idle_for, stop_at)
    return Verdict("keep", idle_for, None)


def describe(seconds: float) -> str:
    """A duration as people say it: "2 h", "1 h 30 min", "45 min", "20 s"."""
    seconds = int(seconds)
    hours, minutes = divmod(seconds // 60, 60)
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{seconds} s"
