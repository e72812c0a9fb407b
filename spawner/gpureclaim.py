"""GPU-idle reclaim: a hub service that stops servers whose leased GPUs sit idle.

    python3 -m spawner.gpureclaim     (run by the hub, configured by RECLAIM_CONFIG)

The idle culler sees Jupyter activity, which an open browser tab keeps alive;
this sees the devices. Each round it reads the leases from the containers'
labels (Docker is the source of truth), the samples from the configured source
(spawner/gpuidle.py), and the users from the hub's API; a lease whose devices
all stayed below the threshold for ``timeout`` seconds is stopped through the
API (which returns its GPUs), after a warning ``warning`` seconds before. Admins
(where ``exempt_admins``) and members of ``exempt_group`` are never stopped.
Idle clocks live in this process: a restart of the hub starts them again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import docker

from . import culltally, gpuidle, idlenotices, leases
from .hubctl.api import ApiError, HubApi
from .labels import LABEL_DEPLOYMENT, LABEL_GPUS

CONFIG_ENV = "RECLAIM_CONFIG"
# What the service needs: users with their admin flag and groups, their servers, and to stop them.
RECLAIM_SCOPES = ["list:users", "read:users", "read:servers", "delete:servers"]

log = logging.getLogger("gpureclaim")


@dataclass(frozen=True)
class Config:
    prefix: str
    data_dir: str
    timeout: int
    warning: int
    threshold: float
    exempt_admins: bool
    exempt_group: str
    samples_file: str

    @property
    def every(self) -> int:
        """Seconds between rounds: a server outlives its timeout by a tenth at most (2 s .. 1 min)."""
        return max(2, min(60, self.timeout // 10))


def service(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The hub service (None where gpu_idle_timeout is 0)."""
    if not settings["gpu_idle_timeout"]:
        return None
    config = Config(
        prefix=settings["prefix"],
        data_dir=settings["data_dir"],
        timeout=settings["gpu_idle_timeout"],
        warning=settings["gpu_idle_warning"],
        threshold=settings["gpu_idle_threshold"],
        exempt_admins=settings["gpu_idle_exempt_admins"],
        exempt_group=settings["gpu_idle_exempt_group"],
        samples_file=settings["gpu_samples_file"],
    )
    command = ["python3", "-m", "spawner.gpureclaim"]
    return {"name": "gpu-reclaim", "command": command, "environment": {CONFIG_ENV: json.dumps(vars(config))}}


def exempt(user: Mapping[str, Any], config: Config) -> bool:
    return (config.exempt_admins and bool(user.get("admin"))) or (
        bool(config.exempt_group) and config.exempt_group in (user.get("groups") or [])
    )


class Reclaimer:
    """One round at a time; ``idle_since`` remembers since when each lease's devices are idle."""

    def __init__(self, config: Config, api: HubApi, containers: Callable[[], list], samples):
        self.config, self.api, self.containers, self.samples = config, api, containers, samples
        self.idle_since: dict[str, datetime] = {}  # container name -> first idle sample
        self.notices_file = idlenotices.path(config.data_dir)

    def round(self, now: datetime) -> None:
        found = leases.leases_from_containers(self.containers(), on_problem=log.warning)
        users = {u["name"]: u for u in self.api.get("/users?state=active")}
        try:
            samples = self.samples.read()
        except (gpuidle.SampleError, OSError) as e:  # no verdicts without data
            log.error("GPU samples unreadable, nothing stopped this round: %s", e)
            return
        notices = idlenotices.read(self.notices_file)
        kept = {name: n for name, n in notices.items() if n.get("kind") == idlenotices.STOPPED}
        seen = set()
        for lease in found:
            user = users.get(lease.user)
            if user is None or exempt(user, self.config):
                continue
            seen.add(lease.container)
            if gpuidle.all_idle(lease.gpus, samples, self.config.threshold):
                self.idle_since.setdefault(lease.container, now)
            else:
                self.idle_since.pop(lease.container, None)
            verdict = gpuidle.judge(self.idle_since.get(lease.container), now, self.config.timeout,
                                    self.config.warning)  # fmt: skip
            if verdict.action == "warn":
                kept[lease.user] = idlenotices.warning(verdict.idle_for.total_seconds(), verdict.stop_at)
            elif verdict.action == "stop":
                if self._stop(lease.user, verdict.idle_for.total_seconds()):
                    kept[lease.user] = idlenotices.stopped(verdict.idle_for.total_seconds(), now)
                    self.idle_since.pop(lease.container, None)
        self.idle_since = {name: t for name, t in self.idle_since.items() if name in seen}
        if kept != notices:
            idlenotices.write(self.notices_file, kept)

    def _stop(self, user: str, idle_for: float) -> bool:
        log.info("Stopping the server of %s: its GPUs were idle for %s", user, gpuidle.describe(idle_for))
        try:
            self.api.request("DELETE", f"/users/{urllib.parse.quote(user, safe='')}/server")
        except ApiError as e:
            log.error("Stopping the server of %s failed: %s", user, e)
            return False
        culltally.record(culltally.path(self.config.data_dir), culltally.GPU_IDLE)
        return True


def _containers(client: docker.APIClient, prefix: str) -> Callable[[], list]:
    def running() -> list:
        found = client.containers(filters={"label": [f"{LABEL_DEPLOYMENT}={prefix}", LABEL_GPUS]})
        return leases.named_labels(found)

    return running


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    config = Config(**json.loads(os.environ[CONFIG_ENV]))
    api = HubApi(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    samples = gpuidle.source(config.samples_file)
    reclaimer = Reclaimer(config, api, _containers(docker.from_env().api, config.prefix), samples)
    log.info("GPU-idle reclaim: below %s%% for %s s stops a server (warned %s s before), every %s s, samples from %s",
             config.threshold, config.timeout, config.warning, config.every, config.samples_file or "NVML")  # fmt: skip
    while True:
        try:
            reclaimer.round(datetime.now(timezone.utc))
        except (ApiError, OSError, docker.errors.DockerException) as e:  # the hub restarting, say: next round
            log.error("GPU-idle round failed: %s", e)
        time.sleep(config.every)


if __name__ == "__main__":
    sys.exit(main())
