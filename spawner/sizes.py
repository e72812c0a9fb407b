"""The one rule for memory sizes (mem_limit, shm_size), shared by the settings
schema, the profile checker and the spawner's traits."""

import re

_SIZE = re.compile(r"\d+(\.\d+)?[KMGT]?")


def parse_size(value: object) -> str:
    """``512m`` -> ``512M``; an int counts bytes. ValueError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _SIZE.fullmatch(text):
        raise ValueError(f"expected a size like 512M or 8G, got {value!r}")
    return text
