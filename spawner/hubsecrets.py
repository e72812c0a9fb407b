"""Secrets the hub generates on first start and keeps (mode 600) in its data volume."""

import os
import secrets

# The files under <data_dir>/secrets/; secret_path() is the one rule for where they live.
COOKIE_SECRET = "cookie_secret"  # written by JupyterHub itself
PROXY_TOKEN = "proxy_token"
HUBCTL_TOKEN = "hubctl_token"
INITIAL_ADMIN_PASSWORD = "initial_admin_password"  # written by PlatformAuthenticator


def secret_path(data_dir: str, name: str) -> str:
    """Where the secret ``name`` of the hub whose data directory is ``data_dir`` is kept."""
    return os.path.join(data_dir, "secrets", name)


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
