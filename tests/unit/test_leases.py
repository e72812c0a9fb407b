"""Leases as Docker labels, the allocator, quotas and the Docker GPU config."""

import logging
from datetime import datetime, timedelta, timezone

import pytest
from docker.types import DeviceRequest

from spawner import leases
from spawner.leases import Lease, NoGpuAvailable, QuotaExceeded

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
GPUS = ("GPU-a", "GPU-b", "GPU-c")


def lease(user, *gpus, shared=False, since=T0, name=None):
    return Lease(user, tuple(gpus), since, shared, name or f"jupyter-{user}")


# -- labels ---------------------------------------------------------------


def test_labels_round_trip_through_containers():
    labels = leases.lease_labels("alice", ("GPU-a", "MIG-x"), False, T0)
    assert labels == {
        "gpuhub.gpus": "GPU-a,MIG-x",
        "gpuhub.user": "alice",
        "gpuhub.leased-at": "2024-05-01T09:30:00+00:00",
        "gpuhub.gpu-mode": "exclusive",
    }
    shared = leases.lease_labels("bob", ("GPU-b",), True, T0 + timedelta(hours=1))
    found = leases.leases_from_containers([("c-alice", labels), ("c-bob", shared)])
    assert found == [
        Lease("alice", ("GPU-a", "MIG-x"), T0, False, "c-alice"),
        Lease("bob", ("GPU-b",), T0 + timedelta(hours=1), True, "c-bob"),
    ]


def test_lease_labels_converts_to_utc_and_rejects_naive_times_and_bad_ids():
    paris = timezone(timedelta(hours=2))
    labels = leases.lease_labels("a", ("0",), False, datetime(2024, 5, 1, 11, 30, tzinfo=paris))
    assert labels["gpuhub.leased-at"] == "2024-05-01T09:30:00+00:00"
    with pytest.raises(ValueError, match="time-zone-aware"):
        leases.lease_labels("a", ("0",), False, datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="no comma"):
        leases.lease_labels("a", ("0,1",), False, T0)


def test_containers_without_gpus_hold_nothing_silently():
    problems = []
    items = [("hub", {}), ("cpu", {"gpuhub.user": "carol", "gpuhub.gpus": ""})]
    assert leases.leases_from_containers(items, on_problem=problems.append) == []
    assert problems == []


def test_malformed_labels_keep_the_gpus_held_and_are_reported():
    problems = []
    items = [
        ("no-gpu-names", {"gpuhub.gpus": " , ", "gpuhub.user": "x"}),
        ("odd", {"gpuhub.gpus": "GPU-a, GPU-a,GPU-b", "gpuhub.leased-at": "yesterday",
                 "gpuhub.gpu-mode": "sometimes"}),
        ("naive", {"gpuhub.gpus": "GPU-c", "gpuhub.user": "d", "gpuhub.gpu-mode": "shared",
                   "gpuhub.leased-at": "2024-05-01T09:30:00"}),
        ("zulu", {"gpuhub.gpus": "0", "gpuhub.user": "e", "gpuhub.gpu-mode": "exclusive",
                  "gpuhub.leased-at": "2024-05-01T09:30:00Z"}),
    ]  # fmt: skip
    found = leases.leases_from_containers(items, on_problem=problems.append)
    assert found == [
        Lease("", ("GPU-a", "GPU-b"), None, False, "odd"),
        Lease("d", ("GPU-c",), None, True, "naive"),
        Lease("e", ("0",), T0, False, "zulu"),
    ]
    text = "\n".join(problems)
    assert "no-gpu-names: label gpuhub.gpus=' , ' names no GPU" in text
    assert "odd: label gpuhub.user is missing" in text
    assert "odd: label gpuhub.leased-at='yesterday'" in text
    assert "'sometimes' unknown; treated as exclusive" in text
    assert "naive: label gpuhub.leased-at" in text
    assert len(problems) == 5
    # the malformed lease still blocks its GPUs, and its unknown mode counts as exclusive
    with pytest.raises(NoGpuAvailable):
        leases.allocate(GPUS, found, 1)
    assert leases.allocate(GPUS, found, 1, shared=True) == ("GPU-c",)


def test_malformed_labels_are_logged_by_default(caplog):
    with caplog.at_level(logging.WARNING, logger="spawner.leases"):
        leases.leases_from_containers([("c1", {"gpuhub.gpus": "GPU-a"})])
    assert "c1: label gpuhub.user is missing" in caplog.text


# -- allocation -----------------------------------------------------------


def test_exclusive_allocation_takes_free_devices_in_inventory_order():
    assert leases.allocate(GPUS, [], 2) == ("GPU-a", "GPU-b")
    assert leases.allocate(GPUS, [lease("alice", "GPU-a")], 2) == ("GPU-b", "GPU-c")
    assert leases.allocate(GPUS, [lease("alice", "GPU-b")], 1) == ("GPU-a",)


def test_allocation_after_leases_disappear():
    held = [lease("alice", "GPU-a", "GPU-b"), lease("bob", "GPU-c")]
    with pytest.raises(NoGpuAvailable):
        leases.allocate(GPUS, held, 1)
    # bob's container was removed (stopped, culled, docker rm): his GPU is free again
    assert leases.allocate(GPUS, held[:1], 1) == ("GPU-c",)
    assert leases.allocate(GPUS, [], 3) == GPUS


def test_exclusive_request_never_takes_a_shared_device():
    held = [lease("s1", "GPU-a", shared=True), lease("s2", "GPU-b", shared=True)]
    assert leases.allocate(GPUS, held, 1) == ("GPU-c",)
    with pytest.raises(NoGpuAvailable):
        leases.allocate(GPUS, held, 2)


def test_shared_request_prefers_the_least_loaded_and_never_an_exclusive_device():
    held = [
        lease("x", "GPU-a"),
        lease("s1", "GPU-b", shared=True),
        lease("s2", "GPU-b", shared=True),
        lease("s3", "GPU-c", shared=True),
    ]
    assert leases.allocate(GPUS, held, 1, shared=True) == ("GPU-c",)
    assert leases.allocate(GPUS, held, 2, shared=True) == ("GPU-b", "GPU-c")
    with pytest.raises(NoGpuAvailable):
        leases.allocate(GPUS, held, 3, shared=True)
    assert leases.allocate(GPUS, [], 2, shared=True) == ("GPU-a", "GPU-b")


def test_mig_ids_and_leases_on_unknown_devices():
    mig = ("MIG-1", "MIG-2")
    held = [lease("alice", "MIG-1"), lease("ghost", "GPU-removed")]
    assert leases.allocate(mig, held, 1) == ("MIG-2",)
    with pytest.raises(NoGpuAvailable) as err:
        leases.allocate(mig, held, 2)
    assert err.value.leased == 1 and [h.user for h in err.value.holders] == ["alice"]


@pytest.mark.parametrize("count", [-1, True, 1.0, "1", None])
def test_allocation_count_must_be_a_non_negative_int(count):
    with pytest.raises(ValueError, match="non-negative integer"):
        leases.allocate(GPUS, [], count)


def test_zero_gpus_allocates_nothing_even_when_all_are_taken():
    assert leases.allocate(GPUS, [lease("alice", *GPUS)], 0) == ()
    assert leases.allocate((), [], 0) == ()


def test_no_free_gpu_message_names_holders_only_for_admins():
    held = [
        lease("alice", "GPU-a", since=T0 + timedelta(days=1)),
        lease("bob", "GPU-b", "GPU-c", since=T0),
    ]
    with pytest.raises(NoGpuAvailable) as err:
        leases.allocate(GPUS, held, 1)
    e = err.value
    assert (e.requested, e.total, e.leased, e.oldest) == (1, 3, 3, T0)
    user_text = e.message(viewer_is_admin=False)
    admin_text = e.message(viewer_is_admin=True)
    for text in (user_text, admin_text):
        assert "3 of the 3 GPUs on this server are leased" in text
        assert "the oldest lease since 2024-05-01 09:30 UTC" in text
    assert "alice" not in user_text and "bob" not in user_text
    assert "ask an admin" in user_text
    assert "alice holds GPU-a since 2024-05-02 09:30 UTC" in admin_text
    assert "bob holds GPU-b, GPU-c since 2024-05-01 09:30 UTC" in admin_text
    assert str(e) == user_text  # what leaks into logs or pages by default names nobody


def test_no_free_gpu_message_when_asking_for_more_than_exist():
    with pytest.raises(NoGpuAvailable) as err:
        leases.allocate(GPUS, [], 4)
    assert err.value.message(viewer_is_admin=True) == ("You asked for 4 GPUs, but this server has only 3.")


# -- quotas ---------------------------------------------------------------


def quota(requested, **kw):
    args = {"user_limit": 1, "group_limits": {}, "groups": [], "is_admin": False}
    args.update(kw)
    return leases.check_quota(requested, **args)


def test_per_user_limit():
    quota(1)
    quota(0)
    with pytest.raises(QuotaExceeded, match=r"You asked for 2 GPUs, but your per-user limit is 1 GPU\.$"):
        quota(2)
    with pytest.raises(QuotaExceeded, match=r"You asked for 1 GPU, but your per-user limit is 0 GPUs\.$"):
        quota(1, user_limit=0)


def test_most_generous_group_limit_wins():
    groups = {"students": 1, "staff": 3, "guests": 0}
    quota(3, group_limits=groups, groups=["guests", "staff"])
    with pytest.raises(QuotaExceeded, match="limit of group 'staff' is 3 GPUs"):
        quota(4, group_limits=groups, groups=["students", "staff", "other"])
    # a group the user is not in does not count
    with pytest.raises(QuotaExceeded, match="per-user limit is 1"):
        quota(2, group_limits=groups, groups=["students"])


def test_none_means_unlimited():
    quota(8, user_limit=None)
    quota(8, group_limits={"lab": None}, groups=["lab"])


def test_admins_may_exceed():
    quota(4, is_admin=True)
    with pytest.raises(QuotaExceeded):
        quota(4, is_admin=False)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_quota_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        quota(bad)


# -- Docker configuration -------------------------------------------------


def test_device_request_config():
    host, env = leases.docker_gpu_config(["GPU-a", "MIG-b"])
    assert host == {
        "device_requests": [DeviceRequest(driver="nvidia", device_ids=["GPU-a", "MIG-b"], capabilities=[["gpu"]])]
    }
    assert host["device_requests"][0]["DeviceIDs"] == ["GPU-a", "MIG-b"]
    assert env == {
        "NVIDIA_VISIBLE_DEVICES": "GPU-a,MIG-b",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }


def test_runtime_config():
    host, env = leases.docker_gpu_config(("3",), mode="runtime", capabilities="all")
    assert host == {"runtime": "nvidia"}
    assert env == {
        "NVIDIA_VISIBLE_DEVICES": "3",
        "NVIDIA_DRIVER_CAPABILITIES": "all",
        "CUDA_VISIBLE_DEVICES": "0",
    }


@pytest.mark.parametrize("mode", ["device-requests", "runtime"])
def test_cpu_container_gets_void(mode):
    host, env = leases.docker_gpu_config([], mode=mode)
    assert host == {}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_bad_gpu_mode_and_capabilities_are_rejected():
    with pytest.raises(ValueError, match="'gpus'"):
        leases.docker_gpu_config(["0"], mode="gpus")
    with pytest.raises(ValueError, match="allowed: all, compat32"):
        leases.docker_gpu_config(["0"], capabilities="compute,cuda")
    with pytest.raises(ValueError):
        leases.docker_gpu_config(["0"], capabilities=" , ")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-01T03:06:16+00:00", datetime(2026, 12, 1, 3, 6, 16, tzinfo=timezone.utc)),  # a lease label
        ("2026-12-01T03:06:16.252123456Z", datetime(2026, 12, 1, 3, 6, 16, 252123, tzinfo=timezone.utc)),  # Docker
        ("2026-12-01T03:06:16.25Z", datetime(2026, 12, 1, 3, 6, 16, 250000, tzinfo=timezone.utc)),
    ],
)
def test_times_of_labels_and_of_docker_parse_alike(text, expected):
    assert leases.parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "2026-12-01T03:06:16", "yesterday"])
def test_a_time_without_a_zone_or_not_a_time_is_refused(text):
    with pytest.raises(ValueError):
        leases.parse_time(text)
