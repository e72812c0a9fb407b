"""How user input appears in messages, errors and logs: quoted, and capped, so
that a 1 MB name or profile makes a short line."""


def shown(value: object, limit: int = 60) -> str:
    """``repr`` of ``value`` (control characters visible), at most about ``limit`` characters."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
