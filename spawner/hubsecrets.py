"""Secrets the hub generates on first start and keeps (mode 600) in its data volume."""

import os
import secrets


def ensure_secret(path: str, nbytes: int = 32) -> str:
    """Return the hex secret stored at ``path``, creating it (mode 600) if absent."""
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    value = secrets.token_hex(nbytes)
    # O_EXCL-free on purpose: an empty file left by a crash is replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return value
