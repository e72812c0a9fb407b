"""Secrets the hub generates on first start and keeps (mode 600) in its data volume."""

import os
import secrets
import sys

# The files under <data_dir>/secrets/; secret_path() is the one rule for where they live.
COOKIE_SECRET = "cookie_secret"  # written by JupyterHub itself
PROXY_TOKEN = "proxy_token"
HUBCTL_TOKEN = "hubctl_token"
INITIAL_ADMIN_PASSWORD = "initial_admin_password"  # written by PlatformAuthenticator
CRYPT_KEY = "crypt_key"  # encrypts auth_state (the provider's tokens and groups)
OAUTH_CLIENT_SECRET = "oauth_client_secret"  # written by the admin: scripts/hub-secret
METRICS_TOKEN = "metrics_token"  # the metrics service's: Prometheus scrapes /hub/metrics with it


def secret_path(data_dir: str, name: str) -> str:
    """Where the secret ``name`` of the hub whose data directory is ``data_dir`` is kept."""
    return os.path.join(data_dir, "secrets", name)


def read_secret(path: str) -> str:
    """The secret stored at ``path``, or "" if there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def ensure_secret(path: str, nbytes: int = 32) -> str:
    """Return the hex secret stored at ``path``, creating it (mode 600) if absent."""
    value = read_secret(path)
    if not value:
        value = secrets.token_hex(nbytes)
        store_secret(path, value)
    return value


def store_secret(path: str, value: str) -> None:
    """Write ``value`` to ``path``, mode 600, in a directory only its owner enters."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    # O_EXCL-free on purpose: an empty file left by a crash is replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)  # the file may predate us with a wider mode


# What scripts/hub-secret may write: secrets an admin brings, not the generated ones.
GIVEN = (OAUTH_CLIENT_SECRET,)


def main(argv: list[str]) -> int:
    """``python -m spawner.hubsecrets NAME DATA_DIR`` stores stdin's first line as NAME."""
    if len(argv) != 2 or argv[0] not in GIVEN:
        print(f"usage: python -m spawner.hubsecrets {'|'.join(GIVEN)} DATA_DIR < secret", file=sys.stderr)
        return 2
    value = sys.stdin.readline().strip()
    if not value:
        print("error: the secret is empty; nothing was written", file=sys.stderr)
        return 1
    path = secret_path(argv[1], argv[0])
    store_secret(path, value)
    print(f"stored {argv[0]} (mode 600) in the hub's data volume; the hub reads it at its next start")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
