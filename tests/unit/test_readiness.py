"""spawner.readiness against real sockets on the loopback: a port that opens late,
a server that dies first, one that never comes; and the trait that turns it on."""

import asyncio
import socket
import time

import pytest
from traitlets import TraitError

from spawner import GPUDockerSpawner, readiness


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def always_alive() -> bool:
    return True


async def test_returns_soon_after_the_port_opens():
    port = free_port()
    server = None

    async def open_late():
        nonlocal server
        await asyncio.sleep(0.5)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        return time.monotonic()

    opener = asyncio.create_task(open_late())
    up = await readiness.wait_for_port("127.0.0.1", port, timeout=10, interval=0.05, alive=always_alive)
    seen = time.monotonic()
    opened = await opener
    server.close()
    assert up is True
    assert seen - opened < 0.5, f"seen {seen - opened:.2f}s after the port opened (interval 0.05s)"


async def test_gives_up_when_the_server_is_gone():
    async def gone() -> bool:
        return False

    t0 = time.monotonic()
    up = await readiness.wait_for_port("127.0.0.1", free_port(), timeout=30, interval=0.05, alive=gone)
    assert up is False
    assert time.monotonic() - t0 < readiness.ALIVE_CHECK_INTERVAL + 1


async def test_gives_up_after_the_timeout():
    t0 = time.monotonic()
    up = await readiness.wait_for_port("127.0.0.1", free_port(), timeout=0.5, interval=0.05, alive=always_alive)
    assert up is False
    assert 0.5 <= time.monotonic() - t0 < 2


def test_interval_is_on_by_default_and_refuses_negative():
    assert GPUDockerSpawner().ready_poll_interval == 0.1
    assert GPUDockerSpawner(ready_poll_interval=0).ready_poll_interval == 0
    with pytest.raises(TraitError, match="ready_poll_interval must be 0 or more"):
        GPUDockerSpawner(ready_poll_interval=-1)
