"""How user-supplied names appear in messages and errors."""


def shown(name: str, limit: int = 40) -> str:
    """Quoted, control characters visible, capped: a 1 MB name makes a short message."""
    return repr(name[:limit]) + ("…" if len(name) > limit else "")
