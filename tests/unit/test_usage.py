"""The GPU-hours ledger's rules (spawner/usage.py) on a real SQLite file, and `hubctl usage`'s
arithmetic. Reading Docker itself (`record`) is tested against the real engine in
tests/integration/test_operating.py."""

import pytest

from spawner import usage
from spawner.hubctl.__main__ import parser
from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS, LABEL_LEASED_AT, LABEL_PROFILE, LABEL_USER

T0 = 1_780_000_000.0  # any fixed moment
LEASED_AT = "2026-05-28T20:26:40+00:00"  # T0 as the spawner writes it


def event(action, container="c1", when=T0, **attrs):
    labels = {LABEL_DEPLOYMENT: "hub", LABEL_USER: "ada", LABEL_GPUS: "0,1", LABEL_PROFILE: "gpu-2", **attrs}
    return {"Action": action, "Actor": {"ID": container, "Attributes": {"name": "jupyter-ada", **labels}},
            "time": int(when), "timeNano": int(when * 1e9)}  # fmt: skip


@pytest.fixture
def db(tmp_path):
    connection = usage.connect(str(tmp_path / usage.LEDGER_FILE))
    yield connection
    connection.close()


def test_leased_at_label_is_the_lease_start():
    assert usage._start_of({LABEL_LEASED_AT: LEASED_AT}, fallback=0.0) == T0
    assert usage._start_of({LABEL_LEASED_AT: "yesterday"}, fallback=5.0) == 5.0
    assert usage._start_of({}, fallback=7.0) == 7.0


def test_a_start_then_a_die_is_one_server_with_its_gpus_and_end(db):
    usage.apply_event(db, event("start"))
    usage.apply_event(db, event("die", when=T0 + 3600, exitCode="0"))
    [row] = usage.servers(db)
    assert (row.user, row.profile, row.gpus) == ("ada", "gpu-2", ("0", "1"))
    assert (row.started, row.ended, row.end_reason) == (T0, T0 + 3600, "exited (code 0)")


def test_replayed_events_change_nothing(db):
    for e in [event("start"), event("die", when=T0 + 60), event("destroy", when=T0 + 61)]:
        usage.apply_event(db, e)
    first = usage.servers(db)
    for e in [event("start", when=T0 + 5), event("die", when=T0 + 600), event("destroy", when=T0 + 601)]:
        usage.apply_event(db, e)  # a hub restart reading the same window again
    assert usage.servers(db) == first


def test_events_of_containers_without_a_user_are_ignored(db):
    e = event("start")
    del e["Actor"]["Attributes"][LABEL_USER]
    usage.apply_event(db, e)
    assert usage.servers(db) == []


def test_an_end_before_the_start_counts_zero_not_negative(db):
    usage.apply_event(db, event("start", **{LABEL_LEASED_AT: LEASED_AT}))
    usage.apply_event(db, event("die", when=T0 - 100))  # clocks disagree
    [row] = usage.servers(db)
    assert row.ended == row.started


def listed(state, container="c1", created=T0):
    """A container as Docker's listing gives it."""
    labels = {LABEL_DEPLOYMENT: "hub", LABEL_USER: "ada", LABEL_GPUS: "0", LABEL_LEASED_AT: LEASED_AT}
    return {"Id": container, "Names": ["/jupyter-ada"], "Labels": labels, "Created": int(created), "State": state}


def test_a_container_created_but_not_yet_started_stays_open(db):
    usage.apply_round(db, [], [listed("created")], T0 + 1, finished_at=lambda _: 0.0)  # its FinishedAt: year 1
    usage.apply_round(db, [event("start", when=T0 + 2)], [listed("running")], T0 + 10, finished_at=lambda _: 0.0)
    [row] = usage.servers(db)
    assert (row.started, row.ended) == (T0, None)


def test_an_exited_container_ends_when_docker_says_it_finished(db):
    usage.apply_round(db, [], [listed("running")], T0 + 10, finished_at=lambda _: 0.0)
    usage.apply_round(db, [], [listed("exited")], T0 + 20, finished_at=lambda _: T0 + 15)
    [row] = usage.servers(db)
    assert (row.ended, row.end_reason) == (T0 + 15, "exited")


def test_a_removed_container_ends_at_its_event_or_else_at_the_last_round_that_saw_it(db):
    usage.apply_round(db, [], [listed("running", "c1"), listed("running", "c2")], T0 + 10, finished_at=float)
    usage.apply_round(db, [event("die", "c1", when=T0 + 12)], [], T0 + 20, finished_at=float)
    ends = {row.container: (row.ended, row.end_reason) for row in usage.servers(db)}
    assert ends == {"c1": (T0 + 12, "exited (code ?)"), "c2": (T0 + 10, "gone while the hub was down")}
    assert usage.watermark(db) == T0 + 20


def server(user="ada", gpus=("0",), start=T0, end=None, profile="gpu-1"):
    return usage.Server("id-" + user + str(start), "x", user, profile, gpus, start, end, None)


def test_hours_are_clipped_to_the_window_and_running_servers_count_until_now():
    rows = [
        server("ada", ("0", "1"), T0 - 7200, T0 + 3600),  # 2 GPUs, 1 h inside the window
        server("bob", (), T0, None),  # CPU only, still running: 2 h until now
    ]
    found = usage.totals(rows, since=T0, now=T0 + 7200)
    assert found == {"ada": {"gpu_hours": 2.0, "server_hours": 1.0}, "bob": {"gpu_hours": 0.0, "server_hours": 2.0}}


def test_by_group_counts_a_user_in_each_group_and_by_profile_per_slug():
    rows = [server("ada", ("0",), T0, T0 + 3600, "gpu-1"), server("bob", ("0",), T0, T0 + 1800, "")]
    groups = {"ada": ["nlp", "vision"]}
    by_group = usage.totals(rows, since=T0, now=T0 + 3600, by="group", groups=groups)
    assert by_group == {
        "(no group)": {"gpu_hours": 0.5, "server_hours": 0.5},
        "nlp": {"gpu_hours": 1.0, "server_hours": 1.0},
        "vision": {"gpu_hours": 1.0, "server_hours": 1.0},
    }
    by_profile = usage.totals(rows, since=T0, now=T0 + 3600, by="profile")
    assert set(by_profile) == {"gpu-1", "(unknown)"}


def test_unknown_grouping_is_refused():
    with pytest.raises(ValueError, match="--by must be one of user, group, profile"):
        usage.totals([], since=0, now=1, by="host")


@pytest.mark.parametrize("argv", [["usage", "--by", "host"], ["usage", "--since", "0d"], ["usage", "--csv", "--json"]])
def test_hubctl_usage_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(argv)
    assert e.value.code == 2


def test_hubctl_usage_defaults_to_30_days_by_user():
    args = parser().parse_args(["usage"])
    assert (args.since, args.by, args.csv, args.json) == (30 * 86400, "user", False, False)
