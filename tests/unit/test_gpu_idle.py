"""GPU-idle reclaim without a hub: samples (the file seam, NVML through the fake),
the idle rule, the warning and stop verdicts, the notices users read, and one
reclaimer round against a recording stand-in of the hub's API."""

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from spawner import culltally, gpuidle, idlenotices
from spawner.gpureclaim import Config, Reclaimer, exempt, service
from spawner.labels import LABEL_GPUS, LABEL_USER
from spawner.settings import load_settings

from .fakenvml import U0, U1, FakeNvml

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def test_file_samples_are_read_at_each_round(tmp_path):
    path = tmp_path / "samples.json"
    source = gpuidle.FileSamples(str(path))
    assert source.read() == {}  # no file yet: no samples, nobody idle
    path.write_text(json.dumps({"0": {"sm": 0, "memory": 3.5}}))
    assert source.read() == {"0": gpuidle.Sample(0, 3.5)}


@pytest.mark.parametrize(
    "text", ["[1]", '{"0": 5}', '{"0": {"sm": 101, "memory": 0}}', '{"0": {"sm": true, "memory": 0}}', "{"]
)
def test_bad_samples_are_an_error_not_idleness(tmp_path, text):
    path = tmp_path / "samples.json"
    path.write_text(text)
    with pytest.raises(gpuidle.SampleError):
        gpuidle.FileSamples(str(path)).read()


def test_nvml_samples_are_sm_and_memory_activity_per_device():
    nvml = FakeNvml([
        {"uuid": U0, "name": "H200", "total": 1, "util": 0, "mem_util": 2},
        {"uuid": U1, "name": "H200", "total": 1, "util": 97, "mem_util": 60},
    ])  # fmt: skip
    assert gpuidle.NvmlSamples(nvml).read() == {U0: gpuidle.Sample(0, 2), U1: gpuidle.Sample(97, 60)}
    assert nvml.shutdowns == 1
    assert gpuidle.NvmlSamples(FakeNvml([], fail_init=True)).read() == {}


def test_the_source_is_the_file_where_one_is_set():
    assert isinstance(gpuidle.source("/srv/samples.json"), gpuidle.FileSamples)
    assert isinstance(gpuidle.source(""), gpuidle.NvmlSamples)


@pytest.mark.parametrize(
    "samples, idle",
    [
        ({"0": gpuidle.Sample(1, 1), "1": gpuidle.Sample(4, 0)}, True),
        ({"0": gpuidle.Sample(1, 1), "1": gpuidle.Sample(50, 0)}, False),  # one busy device keeps the lease
        ({"0": gpuidle.Sample(1, 1), "1": gpuidle.Sample(0, 5)}, False),  # memory traffic is activity
        ({"0": gpuidle.Sample(1, 1)}, False),  # no sample: busy
    ],
)
def test_a_lease_is_idle_when_every_device_is_below_the_threshold(samples, idle):
    assert gpuidle.all_idle(["0", "1"], samples, threshold=5) is idle


@pytest.mark.parametrize(
    "idle_for, action", [(None, "keep"), (100, "keep"), (6300, "warn"), (7199, "warn"), (7200, "stop")]
)
def test_judge_warns_before_the_timeout_and_stops_at_it(idle_for, action):
    since = None if idle_for is None else T0 - timedelta(seconds=idle_for)
    verdict = gpuidle.judge(since, T0, timeout=7200, warning=900)
    assert verdict.action == action
    if action != "keep":
        assert verdict.stop_at == T0 - timedelta(seconds=idle_for) + timedelta(hours=2)


@pytest.mark.parametrize("seconds, text", [(7200, "2 h"), (5400, "1 h 30 min"), (2700, "45 min"), (20, "20 s")])
def test_durations_read_as_people_say_them(seconds, text):
    assert gpuidle.describe(seconds) == text


def test_the_warning_says_the_time_left_and_the_stop_says_why():
    warned = idlenotices.warning(6300, T0 + timedelta(minutes=15))
    assert idlenotices.text(warned, T0) == (
        "Your server's GPUs have been idle for 1 h 45 min: it will be stopped in 15 min (at 12:15 UTC) "
        "unless they are used again. Your files are kept."
    )
    assert idlenotices.text(idlenotices.stopped(7200, T0), T0) == (
        "Your server was stopped: GPU idle for 2 h; your files are kept."
    )


def test_the_announcement_shows_each_notice_only_while_it_holds():
    warned, stopped = idlenotices.warning(6300, T0), idlenotices.stopped(7200, T0)
    assert idlenotices.announcement(warned, True, None, T0).startswith("Your server&#x27;s GPUs")  # escaped
    assert idlenotices.announcement(warned, False, None, T0) == ""  # stopped meanwhile
    assert idlenotices.announcement(stopped, False, T0 - timedelta(hours=3), T0).startswith("Your server was")
    assert idlenotices.announcement(stopped, True, T0 + timedelta(minutes=1), T0) == ""  # started again since
    assert idlenotices.announcement(None, True, None, T0) == ""


def test_the_home_page_hook_reads_the_users_notice(tmp_path):
    idlenotices.write(idlenotices.path(str(tmp_path)), {"ada": idlenotices.stopped(7200, T0)})
    hook = idlenotices.HomeAnnouncement(str(tmp_path))
    ada = SimpleNamespace(name="ada", spawner=SimpleNamespace(active=False, orm_spawner=SimpleNamespace(started=None)))
    bob = SimpleNamespace(name="bob", spawner=ada.spawner)
    assert "GPU idle for 2 h" in hook(ada) and hook(bob) == "" and hook(None) == ""


def test_exemptions_admins_and_the_opt_out_group():
    config = config_for(exempt_admins=True, exempt_group="long-runs")
    assert exempt({"admin": True, "groups": []}, config)
    assert exempt({"admin": False, "groups": ["long-runs"]}, config)
    assert not exempt({"admin": False, "groups": ["other"]}, config)
    assert not exempt({"admin": True, "groups": []}, config_for(exempt_admins=False, exempt_group=""))


def test_the_service_is_configured_from_the_settings_or_absent(tmp_path):
    settings = load_settings({"GPUHUB_DATA_DIR": str(tmp_path), "GPUHUB_GPU_SAMPLES_FILE": "/x.json"})
    spec = service(settings)
    assert spec["command"] == ["python3", "-m", "spawner.gpureclaim"]
    assert json.loads(spec["environment"]["RECLAIM_CONFIG"])["samples_file"] == "/x.json"
    assert service({**settings, "gpu_idle_timeout": 0}) is None


def config_for(**changes) -> Config:
    base = dict(prefix="t", data_dir="/nowhere", timeout=60, warning=30, threshold=5, exempt_admins=True,
                exempt_group="", samples_file="")  # fmt: skip
    return Config(**{**base, **changes})


class RecordingApi:
    """The hub's API as the reclaimer uses it: users in, DELETEs recorded."""

    def __init__(self, users):
        self.users, self.deleted = users, []

    def get(self, path):
        return self.users

    def request(self, method, path, body=None):
        self.deleted.append((method, path))


class Samples:
    def __init__(self):
        self.now = {}

    def read(self):
        return self.now


def test_a_round_warns_then_stops_the_idle_lease_and_spares_busy_and_exempt_ones(tmp_path):
    users = [{"name": n, "admin": n == "root", "groups": []} for n in ("ada", "bob", "root")]
    api, samples = RecordingApi(users), Samples()
    containers = [(f"c-{n}", {LABEL_GPUS: g, LABEL_USER: n}) for n, g in (("ada", "0"), ("bob", "1"), ("root", "2"))]
    reclaimer = Reclaimer(config_for(data_dir=str(tmp_path)), api, lambda: containers, samples)
    idle, busy = gpuidle.Sample(0, 0), gpuidle.Sample(90, 10)
    samples.now = {"0": idle, "1": busy, "2": idle}
    notices = idlenotices.path(str(tmp_path))

    reclaimer.round(T0)
    reclaimer.round(T0 + timedelta(seconds=29))
    assert api.deleted == [] and idlenotices.read(notices) == {}
    reclaimer.round(T0 + timedelta(seconds=30))
    assert idlenotices.read(notices) == {"ada": idlenotices.warning(30, T0 + timedelta(seconds=60))}
    reclaimer.round(T0 + timedelta(seconds=60))
    assert api.deleted == [("DELETE", "/users/ada/server")]  # not bob (busy), not root (admin)
    assert idlenotices.read(notices) == {"ada": idlenotices.stopped(60, T0 + timedelta(seconds=60))}
    assert culltally.read(culltally.path(str(tmp_path))) == {"gpu-idle": 1}  # for /hub/metrics


def test_activity_resets_the_idle_clock_and_unreadable_samples_stop_nothing(tmp_path):
    api, samples = RecordingApi([{"name": "ada", "admin": False, "groups": []}]), Samples()
    containers = [("c", {LABEL_GPUS: "0", LABEL_USER: "ada"})]
    reclaimer = Reclaimer(config_for(data_dir=str(tmp_path)), api, lambda: containers, samples)
    samples.now = {"0": gpuidle.Sample(0, 0)}
    reclaimer.round(T0)
    samples.now = {"0": gpuidle.Sample(40, 0)}
    reclaimer.round(T0 + timedelta(seconds=50))
    samples.now = {"0": gpuidle.Sample(0, 0)}
    reclaimer.round(T0 + timedelta(seconds=55))
    reclaimer.round(T0 + timedelta(seconds=100))
    assert api.deleted == []  # idle since 55 s only

    def broken():
        raise gpuidle.SampleError("bad")

    samples.read = broken
    reclaimer.round(T0 + timedelta(seconds=500))
    assert api.deleted == []
