"""The Swarm suite's cluster: built once per session, torn down (data included) at the end."""

import pytest

from ..deployment import ROOT
from .cluster import NAME, Cluster, build_node_image


@pytest.fixture(scope="session")
def cluster(docker_client):
    build_node_image()
    swarm = Cluster(docker_client)
    swarm.remove()  # leftovers of an interrupted run
    try:
        swarm.start()
        swarm.wait_healthy()
        yield swarm
    finally:
        if swarm.nodes:  # the hub's log outlives the cluster
            (ROOT / ".build").mkdir(exist_ok=True)
            (ROOT / f".build/{NAME}-hub.log").write_text(swarm.hub_logs())
        swarm.remove()


@pytest.fixture(scope="session")
def admin_api(cluster):
    return cluster.admin_api()
