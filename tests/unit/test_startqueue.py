"""spawner.startqueue: slots taken in order, given back once, passed on to the next
waiter; a cancelled wait leaves the queue as it was; a boot that hangs gives its
slot back after HOLD_LIMIT. And the trait that sizes it."""

import asyncio

import pytest
from traitlets import TraitError

from spawner import GPUDockerSpawner, startqueue


async def test_at_most_size_boot_and_the_others_start_in_arrival_order():
    queue = startqueue.StartQueue(2)
    first, second = await queue.take(), await queue.take()
    started = []

    async def wait(name):
        release = await queue.take()
        started.append(name)
        return release

    waiters = [asyncio.create_task(wait(name)) for name in ("c", "d", "e")]
    await asyncio.sleep(0.05)
    assert started == [] and queue.booting == 2
    assert queue.ahead() == 5  # two booting, three waiting

    first()
    first()  # a second call gives back nothing more
    await asyncio.sleep(0.05)
    assert started == ["c"] and queue.booting == 2
    second()
    await asyncio.sleep(0.05)
    assert started == ["c", "d"]
    (await waiters[0])()
    release_e = await waiters[2]
    assert started == ["c", "d", "e"]
    (await waiters[1])()
    release_e()
    assert queue.booting == 0 and queue.ahead() == 0


async def one_booting_two_waiting():
    """A queue of one slot, taken, and two waits for it in line: (queue, release, first, second)."""
    queue = startqueue.StartQueue(1)
    release = await queue.take()
    first, second = asyncio.create_task(queue.take()), asyncio.create_task(queue.take())
    await asyncio.sleep(0.05)
    return queue, release, first, second


async def test_a_cancelled_wait_takes_no_slot_and_skips_its_turn():
    queue, release, cancelled, after = await one_booting_two_waiting()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert queue.ahead() == 2  # the booting one and `after`
    release()
    (await asyncio.wait_for(after, 1))()
    assert queue.booting == 0


async def test_a_slot_handed_over_as_the_wait_is_cancelled_goes_to_the_next():
    queue, release, unlucky, nxt = await one_booting_two_waiting()
    release()  # hands the slot to `unlucky`, which is cancelled before it resumes
    unlucky.cancel()
    with pytest.raises(asyncio.CancelledError):
        await unlucky
    (await asyncio.wait_for(nxt, 1))()
    assert queue.booting == 0


async def test_a_boot_that_hangs_gives_its_slot_back_after_the_hold_limit(monkeypatch):
    monkeypatch.setattr(startqueue, "HOLD_LIMIT", 0.2)
    queue = startqueue.StartQueue(1)
    hung = await queue.take()
    nxt = await asyncio.wait_for(queue.take(), 2)  # not released by `hung`: its hold ran out
    hung()  # late: gives back nothing more
    assert queue.booting == 1
    nxt()
    assert queue.booting == 0


async def test_one_queue_per_event_loop_sized_by_the_latest_setting():
    queue = startqueue.for_this_loop(3)
    assert startqueue.for_this_loop(5) is queue and queue.size == 5


def test_start_concurrency_defaults_to_twice_the_cpus_and_refuses_negative(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert GPUDockerSpawner().start_concurrency == 12
    assert GPUDockerSpawner(start_concurrency=0).start_concurrency == 0
    with pytest.raises(TraitError, match="start_concurrency must be 0 or more"):
        GPUDockerSpawner(start_concurrency=-1)
