"""/hub/gpus, for admins: who holds which GPU since when, utilisation, GPU-hours per user.

Read-only (GET); its numbers come from the metrics snapshot (spawner/metrics.py)
and the GPU-hours ledger (spawner/usage.py), both read off the event loop. The
chart is an SVG drawn here: no script, nothing fetched from elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone

from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from . import usage
from .metrics import PlatformCollector

CHART_DAYS = 30
BAR_WIDTH = 480  # pixels of the longest bar


def device_rows(snapshot) -> list[dict]:
    """One row per GPU: holders (user, since) and NVML usage where there is one."""
    rows = []
    for gpu in snapshot.device_ids:
        holders = [lease for lease in snapshot.held if gpu in lease.gpus]
        used = snapshot.devices.get(gpu, {})
        rows.append(
            {
                "gpu": gpu,
                "holders": [
                    (
                        lease.user,
                        lease.since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if lease.since else "",
                    )
                    for lease in holders
                ],
                "shared": any(lease.shared for lease in holders),
                "utilization": used.get("utilization_percent"),
                "memory_used_mib": used.get("memory_used_mib"),
                "memory_total_mib": used.get("memory_total_mib"),
            }
        )
    return rows


def chart_bars(totals: dict[str, dict[str, float]]) -> list[dict]:
    """Bars of GPU-hours per user, longest first, widths scaled to BAR_WIDTH."""
    ranked = sorted(totals.items(), key=lambda item: (-item[1]["gpu_hours"], item[0]))
    top = max((v["gpu_hours"] for _, v in ranked), default=0.0) or 1.0
    return [
        {"user": user, "hours": round(v["gpu_hours"], 2), "width": max(1, round(BAR_WIDTH * v["gpu_hours"] / top))}
        for user, v in ranked
        if v["gpu_hours"] > 0
    ]


def read_totals(ledger: str, days: int = CHART_DAYS) -> dict[str, dict[str, float]]:
    """GPU-hours per user over ``days`` from the ledger ({} before its first write). Blocking."""
    if not os.path.exists(ledger):
        return {}
    rows = usage.read_servers(ledger)
    now = time.time()
    return usage.totals(rows, since=now - days * 86400, now=now)


class GpusHandler(BaseHandler):
    """GET /hub/gpus: admins only (the admin page's own scope); nothing here changes state."""

    def initialize(self, collector: PlatformCollector, ledger: str):
        self.collector, self.ledger = collector, ledger

    @web.authenticated
    @needs_scope("admin-ui")
    async def get(self):
        snapshot = await self.collector.refresh()
        totals = await asyncio.to_thread(read_totals, self.ledger)
        html = await self.render_template(
            "gpus.html",
            rows=device_rows(snapshot),
            nvml=bool(snapshot.devices),
            bars=chart_bars(totals),
            bar_width=BAR_WIDTH,
            days=CHART_DAYS,
            taken=datetime.fromtimestamp(snapshot.taken, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
        self.finish(html)
