"""spawner.swarmleases: the nodes' advertised GPUs and the tasks holding them, from API answers."""

from datetime import datetime, timezone

from spawner.labels import LABEL_USER
from spawner.swarmleases import cluster_gpus, gpu_rows, resource_env, task_leases

KIND = "NVIDIA-GPU"


def node(node_id, host, gpus, state="ready", availability="active"):
    named = [{"NamedResourceSpec": {"Kind": KIND, "Value": gpu}} for gpu in gpus]
    other = [{"DiscreteResourceSpec": {"Kind": "SSD", "Value": 1}}]
    return {
        "ID": node_id,
        "Description": {"Hostname": host, "Resources": {"GenericResources": named + other}},
        "Status": {"State": state},
        "Spec": {"Availability": availability},
    }


def service(service_id, user):
    return {"ID": service_id, "Spec": {"Name": f"hub-{user}", "Labels": {LABEL_USER: user}}}


def task(service_id, node_id, gpus, desired="running", created="2026-11-30T23:55:16.910029216Z"):
    return {
        "ServiceID": service_id,
        "NodeID": node_id,
        "DesiredState": desired,
        "CreatedAt": created,
        "GenericResources": [{"NamedResourceSpec": {"Kind": KIND, "Value": gpu}} for gpu in gpus],
    }


NODES = [node("n2", "w2", ["GPU-c"], availability="drain"), node("n1", "w1", ["GPU-a", "GPU-b"]), node("n0", "m", [])]


def test_the_inventory_is_every_named_gpu_by_node_and_says_which_nodes_take_servers():
    gpus = cluster_gpus(NODES, KIND)
    assert [(g.node, g.id, g.usable) for g in gpus] == [("w1", "GPU-a", True), ("w1", "GPU-b", True),
                                                         ("w2", "GPU-c", False)]  # fmt: skip
    assert cluster_gpus(NODES, "OTHER") == []


def test_a_task_holds_its_assigned_gpus_while_it_should_run_and_only_for_the_hubs_services():
    tasks = [
        task("s1", "n1", ["GPU-b"]),
        task("s2", "n1", ["GPU-a"], desired="shutdown"),  # on its way out: no longer counted
        task("other", "n1", ["GPU-a"]),  # not a service of this hub
        task("s3", "n0", []),  # a CPU server
    ]
    [held] = task_leases(tasks, [service("s1", "ann"), service("s2", "bob"), service("s3", "cy")], NODES, KIND)
    assert held.node == "w1"
    assert (held.lease.user, held.lease.gpus, held.lease.container) == ("ann", ("GPU-b",), "hub-ann")
    assert held.lease.since == datetime(2026, 11, 30, 23, 55, 16, 910029, tzinfo=timezone.utc)


def test_an_unreadable_creation_time_keeps_the_lease():
    [held] = task_leases([task("s1", "n1", ["GPU-a"], created="?")], [service("s1", "ann")], NODES, KIND)
    assert held.lease.gpus == ("GPU-a",) and held.lease.since is None


def test_hubctl_rows_name_node_device_holder_and_a_node_that_takes_no_servers():
    rows = gpu_rows(NODES, [service("s1", "ann")], [task("s1", "n1", ["GPU-b"])], KIND)
    assert [(r["node"], r["gpu"], r["users"]) for r in rows] == [
        ("w1", "GPU-a", []),
        ("w1", "GPU-b", ["ann"]),
        ("w2 (not available)", "GPU-c", []),
    ]
    assert rows[1]["since"].startswith("2026-11-30T23:55:16")


def test_swarm_names_the_variable_after_the_kind_upper_case():
    assert resource_env("nvidia-GPU") == "DOCKER_RESOURCE_NVIDIA-GPU"
