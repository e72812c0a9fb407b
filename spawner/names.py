"""Docker-safe, collision-free names for containers and volumes.

Usernames may hold anything JupyterHub accepts: unicode, dots, upper case,
hundreds of characters. Docker names must match ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``
and the container name doubles as a DNS label on the user network (<= 63).
"""

import hashlib

from escapism import escape

# The workspace volume of each user, as a DockerSpawner template ({username}
# is the escaped name, safe_slug).
WORKSPACE_VOLUME = "{prefix}-home-{username}"
_SAFE = set("abcdefghijklmnopqrstuvwxyz0123456789")
# In escaped text every "-" starts a two-hex-digit escape, so "--" never
# occurs there: it marks the shortened form and keeps the two disjoint.
_HASH_MARK = "--"
_HASH_LEN = 12


def safe_slug(name: str, max_len: int = 40) -> str:
    """Escape ``name`` injectively into ``[a-z0-9-]`` of at most ``max_len``.

    The empty name (the default server's name) stays empty. Short names are
    plain escapes (readable, and what dockerspawner's default escaping gives);
    long ones keep a readable head plus a hash of the whole name.
    """
    escaped = escape(name, safe=_SAFE, escape_char="-").lower()
    if len(escaped) <= max_len:
        return escaped
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_LEN]
    head = escaped[: max_len - _HASH_LEN - len(_HASH_MARK)]
    # Never cut inside an escape: the head must not end in "-" or "-x".
    cut = head.rfind("-")
    if cut != -1 and cut > len(head) - 3:
        head = head[:cut]
    return f"{head}{_HASH_MARK}{digest}"


def workspace_volume(prefix: str, username: str) -> str:
    """The name of ``username``'s workspace volume (what the spawner renders)."""
    return WORKSPACE_VOLUME.format(prefix=prefix, username=safe_slug(username))
