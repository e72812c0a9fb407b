"""spawner.readiness against real sockets on the loopback: a server that starts late,
a port that accepts but does not answer, a server that dies first, one that never
comes; and the trait that turns it on."""

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


async def http_server(port: int, requests: list | None = None):
    """Answers every request with a status line, noting the request line."""

    async def answer(reader, writer):
        line = await reader.readline()
        if requests is not None:
            requests.append(line.decode().strip())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def test_returns_soon_after_the_server_answers_and_asks_for_the_path():
    port, requests, server = free_port(), [], None

    async def open_late():
        nonlocal server
        await asyncio.sleep(0.5)
        server = await http_server(port, requests)
        return time.monotonic()

    opener = asyncio.create_task(open_late())
    up = await readiness.wait_until_serving("127.0.0.1", port, "/user/a/api", 10, 0.05, always_alive)
    seen = time.monotonic()
    opened = await opener
    server.close()
    assert up is True
    assert seen - opened < 0.5, f"seen {seen - opened:.2f}s after the server started (interval 0.05s)"
    assert requests == ["GET /user/a/api HTTP/1.0"]


async def test_a_port_that_accepts_but_does_not_answer_is_not_up():
    # Docker's userland proxy accepts on a published port before the server
    # listens, then closes the connection.
    port = free_port()
    proxy = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
    try:
        up = await readiness.wait_until_serving("127.0.0.1", port, "/api", 0.5, 0.05, always_alive)
        assert up is False
        # With TLS (internal_ssl) no plain request can be made: accepting is enough.
        assert await readiness.wait_until_serving("127.0.0.1", port, None, 0.5, 0.05, always_alive) is True
    finally:
        proxy.close()
    server = await http_server(port)
    try:
        assert await readiness.wait_until_serving("127.0.0.1", port, "/api", 5, 0.05, always_alive) is True
    finally:
        server.close()


async def test_gives_up_when_the_server_is_gone():
    async def gone() -> bool:
        return False

    t0 = time.monotonic()
    up = await readiness.wait_until_serving("127.0.0.1", free_port(), "/api", 30, 0.05, gone)
    assert up is False
    assert time.monotonic() - t0 < readiness.ALIVE_CHECK_INTERVAL + 1


async def test_gives_up_after_the_timeout():
    t0 = time.monotonic()
    up = await readiness.wait_until_serving("127.0.0.1", free_port(), "/api", 0.5, 0.05, always_alive)
    assert up is False
    assert 0.5 <= time.monotonic() - t0 < 2


def test_interval_is_on_by_default_and_refuses_negative():
    assert GPUDockerSpawner().ready_poll_interval == 0.05
    assert GPUDockerSpawner(ready_poll_interval=0).ready_poll_interval == 0
    with pytest.raises(TraitError, match="ready_poll_interval must be 0 or more"):
        GPUDockerSpawner(ready_poll_interval=-1)
