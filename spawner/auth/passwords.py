"""bcrypt, as NativeAuthenticator stores it, with bcrypt 5's limit made explicit.

bcrypt reads at most 72 bytes of a password; bcrypt 5 raises ValueError
beyond that (4.x silently truncated). These functions are blocking (about
0.3 s each at the default cost): call them from a worker thread.
"""

import bcrypt

MAX_BYTES = 72


def too_long(password: str) -> bool:
    return len(password.encode("utf-8")) > MAX_BYTES


def hash_password(password: str) -> bytes:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt())


def matches(password: str, stored: bytes) -> bool:
    # A password bcrypt cannot hash can never have been stored: a plain miss.
    return not too_long(password) and bcrypt.checkpw(password.encode("utf-8"), stored)
