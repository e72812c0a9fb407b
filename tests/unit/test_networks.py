"""Subnets of the per-server networks."""

import ipaddress
import itertools

import pytest

from spawner.networks import candidate_subnets


def test_every_subnet_of_the_pool_once_starting_at_the_names_hash():
    subnets = list(candidate_subnets("gpuhub-alice", "10.213.0.0/16", 28))
    assert len(subnets) == len(set(subnets)) == 4096
    assert all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network("10.213.0.0/16")) for s in subnets)
    assert subnets == list(candidate_subnets("gpuhub-alice", "10.213.0.0/16", 28))  # stable
    firsts = {next(candidate_subnets(f"gpuhub-u{i}", "10.213.0.0/16", 28)) for i in range(50)}
    assert len(firsts) > 40  # names spread over the pool


def test_a_large_pool_is_walked_lazily():
    first_two = list(itertools.islice(candidate_subnets("x", "10.0.0.0/8", 29), 2))
    assert len(first_two) == 2


@pytest.mark.parametrize("pool, prefixlen", [("10.213.0.0/16", 16), ("10.213.0.0/16", 31), ("10.213.0.0/24", 8)])
def test_a_pool_that_cannot_be_cut_is_refused(pool, prefixlen):
    with pytest.raises(ValueError, match="cannot cut"):
        next(candidate_subnets("x", pool, prefixlen))
