"""Servers of one hub boot a few at a time, the others wait their turn in order.

Booting a single-user server is CPU work: about a second of it for imports and
extension loading. When a class presses "Start" together, 25 servers booting
at once on 2 cores share the CPU and all of them become ready near the end of
the storm. Taken in turns, each boot gets the cores it needs: the first users
are working within seconds, half the class in about half the time, and the
last no later than before (less contention: a little sooner).

A slot is held from `docker start` until the server answers HTTP, the
server is gone, the start fails, or HOLD_LIMIT has passed: a server that
hangs holds up the others for that long at most.
"""

import asyncio
import weakref
from collections import deque
from collections.abc import Callable

HOLD_LIMIT = 10.0  # seconds one boot may keep its slot; a healthy boot takes 1-3 s


class StartQueue:
    """At most `size` slots taken at once; waiters get them first come, first served."""

    def __init__(self, size: int):
        self.size = size
        self.booting = 0
        self._waiting: deque[asyncio.Future] = deque()

    def _free(self) -> bool:
        """A slot is free and nobody waits for one."""
        return self.booting < self.size and not self._waiting

    def ahead(self) -> int:
        """How many servers would boot or wait before one that asks now; 0: it starts at once."""
        if self._free():
            return 0
        return self.booting + sum(not turn.done() for turn in self._waiting)

    async def take(self) -> Callable[[], None]:
        """Wait for a slot; returns the function that gives it back (once, however often called)."""
        if self._free():
            self.booting += 1
        else:
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # handed a slot just as the wait was cancelled
                    self._pass_on()
                elif turn in self._waiting:
                    self._waiting.remove(turn)
                raise

        def release() -> None:
            nonlocal timer
            if timer is not None:
                timer.cancel()
                timer = None
                self._pass_on()

        timer = asyncio.get_running_loop().call_later(HOLD_LIMIT, release)
        return release

    def _pass_on(self) -> None:
        """A slot is free: the next waiter takes it over, else it goes back."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.booting -= 1


# One queue per event loop (the hub has one; tests make one per test).
_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StartQueue]" = weakref.WeakKeyDictionary()


def for_this_loop(size: int) -> StartQueue:
    """The running loop's queue, with `size` slots."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = StartQueue(size)
    queue.size = size
    return queue
