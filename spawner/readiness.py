"""Wait until a just-started server's port accepts connections, at a short fixed interval.

JupyterHub 5.5 polls a starting server over HTTP with jittered exponential
backoff (jupyterhub/utils.py: exponential_backoff, each wait drawn from
[0, 0.2 * 2**k] s, up to 5 s), so a server that is up after one second is
seen anywhere up to about three seconds later. A TCP connect every 0.1 s
is cheap for the hub; once the port accepts, the hub's own first HTTP check
waits on that connection until the server answers, without a sleep between.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

ALIVE_CHECK_INTERVAL = 1.0  # seconds between asking whether the server is still running


async def wait_for_port(
    ip: str, port: int, timeout: float, interval: float, alive: Callable[[], Awaitable[bool]]
) -> bool:
    """True once ip:port accepts a TCP connection; False when `alive()` says the
    server is gone or after `timeout` seconds (the hub's own check then decides)."""
    deadline = time.monotonic() + timeout
    next_alive_check = time.monotonic() + ALIVE_CHECK_INTERVAL
    while (left := deadline - time.monotonic()) > 0:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=min(left, 1.0))
        except (OSError, asyncio.TimeoutError):
            pass
        else:
            writer.close()
            return True
        if time.monotonic() >= next_alive_check:
            if not await alive():
                return False
            next_alive_check = time.monotonic() + ALIVE_CHECK_INTERVAL
        await asyncio.sleep(interval)
    return False
