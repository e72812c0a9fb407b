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


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def size_bytes(value: object) -> int:
    """Bytes of a size as ``parse_size`` accepts it (binary units, as Docker reads them)."""
    text = parse_size(value)
    unit = text[-1] if text[-1] in _UNITS else ""
    return int(float(text[: len(text) - len(unit)]) * _UNITS[unit])


def human(n: int) -> str:
    """``1536`` -> ``1.5K``: bytes as people read them."""
    for unit in ("", "K", "M", "G"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "" or n >= 10 else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"
