"""Wait until a just-started server answers, checking at a short fixed interval.

JupyterHub 5.5 polls a starting server over HTTP with jittered exponential
backoff (jupyterhub/utils.py: exponential_backoff, each wait drawn from
[0, 0.2 * 2**k] s, up to 5 s), so a server that is up after one second is
seen anywhere up to about three seconds later. One small request every 0.05 s
is cheap for the hub, and the hub's own first check then finds the server up.

The check is an HTTP answer, not an accepted connection: a port published
through Docker's userland proxy accepts connections before the server
listens. Any status line counts (the server is up, whatever it thinks of the
request). With internal_ssl the server speaks TLS with client certificates
only, so an accepted connection has to do (`path` None).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

ALIVE_CHECK_INTERVAL = 1.0  # seconds between asking whether the server is still running


async def _answers(ip: str, port: int, path: str | None, timeout: float) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=min(timeout, 1.0))
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        if path is None:
            return True
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), timeout=timeout)
        return status.startswith(b"HTTP/")
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


async def wait_until_serving(
    ip: str,
    port: int,
    path: str | None,
    timeout: float,
    interval: float,
    alive: Callable[[], Awaitable[bool]],
) -> bool:
    """True once ip:port answers GET `path` (or, `path` None, accepts a connection); False
    when `alive()` says the server is gone or after `timeout` seconds (the hub's own check
    then decides)."""
    deadline = time.monotonic() + timeout
    next_alive_check = time.monotonic() + ALIVE_CHECK_INTERVAL
    while (left := deadline - time.monotonic()) > 0:
        if await _answers(ip, port, path, left):
            return True
        if time.monotonic() >= next_alive_check:
            if not await alive():
                return False
            next_alive_check = time.monotonic() + ALIVE_CHECK_INTERVAL
        await asyncio.sleep(interval)
    return False
