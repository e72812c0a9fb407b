"""spawner.workspaces.shared_volume_sizes: callers that arrive during a count share it;
one that comes after a count ended gets a new one, never an older result."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from spawner import workspaces


class SlowEngine:
    """docker.APIClient.df as the engine answers it, slowly, counting the calls."""

    def __init__(self, seconds: float):
        self.seconds, self.calls, self.size = seconds, 0, 100
        self.lock = threading.Lock()

    def df(self):
        with self.lock:
            self.calls += 1
            size = self.size
        time.sleep(self.seconds)
        return {"Volumes": [{"Name": "ws", "UsageData": {"Size": size}}, {"Name": "unknown", "UsageData": None}]}


def test_callers_during_a_count_share_it():
    engine = SlowEngine(0.5)
    with ThreadPoolExecutor(10) as pool:
        first = pool.submit(workspaces.shared_volume_sizes, engine)
        time.sleep(0.1)  # the first count is under way
        rest = [pool.submit(workspaces.shared_volume_sizes, engine) for _ in range(9)]
        results = [first.result(), *(f.result() for f in rest)]
    assert results == [{"ws": 100}] * 10
    assert engine.calls == 1


def test_a_caller_after_a_count_gets_a_new_one():
    engine = SlowEngine(0)
    assert workspaces.shared_volume_sizes(engine) == {"ws": 100}
    engine.size = 200  # the user cleaned up, or filled up, since
    assert workspaces.shared_volume_sizes(engine) == {"ws": 200}
    assert engine.calls == 2
