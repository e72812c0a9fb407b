"""Subnets for per-server Docker networks.

Each user server gets a bridge network of its own that only the hub joins, so
user containers reach the hub and the internet but never each other. Docker's
default address pools hold about 30 bridge networks, far too few for a lab, so
every network is created with an explicit subnet from a configured pool.
"""

import hashlib
import ipaddress
from collections.abc import Iterator


def candidate_subnets(name: str, pool: str, prefixlen: int) -> Iterator[str]:
    """Every ``/prefixlen`` subnet of ``pool``, starting at one picked by a hash of ``name``.

    Docker refuses a subnet that overlaps another network's, so the caller
    tries them in this order; hashing spreads concurrent creations apart.
    """
    network = ipaddress.ip_network(pool)
    if not network.prefixlen < prefixlen <= network.max_prefixlen - 2:
        raise ValueError(f"cannot cut /{prefixlen} subnets with room for hosts out of {pool}")
    count = 2 ** (prefixlen - network.prefixlen)
    size = 2 ** (network.max_prefixlen - prefixlen)
    start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count
    for i in range(count):
        first = network.network_address + ((start + i) % count) * size
        yield f"{first}/{prefixlen}"
