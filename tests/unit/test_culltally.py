"""Culls by reason across processes (spawner/culltally.py): the idle culler's hook
and GPU-idle reclaim count into one file the hub's metrics read."""

import multiprocessing

from spawner import culltally


def test_an_absent_broken_or_hostile_file_counts_nothing_and_is_replaced(tmp_path):
    tally = tmp_path / "culls.json"
    assert culltally.read(tally) == {}
    for broken in ["{not json", "[1, 2]", '{"idle": "many", "gpu-idle": -3, "x": true}']:
        tally.write_text(broken)
        assert culltally.read(tally) == {}
    culltally.record(tally, culltally.IDLE)
    assert culltally.read(tally) == {"idle": 1}


def _record_many(tally, reason, times):
    for _ in range(times):
        culltally.record(tally, reason)


def test_two_processes_recording_at_once_lose_no_count(tmp_path):
    tally = tmp_path / "culls.json"
    workers = [
        multiprocessing.Process(target=_record_many, args=(tally, reason, 200))
        for reason in (culltally.IDLE, culltally.GPU_IDLE, culltally.IDLE)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert culltally.read(tally) == {"idle": 400, "gpu-idle": 200}
