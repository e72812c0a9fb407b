"""Who may sign in, and through which identity provider: the ``auth`` setting.

``auth`` is either ``native`` (the hub's own accounts) or a mapping whose
``provider`` names an OAuth/OIDC provider and whose other keys are that
provider's fields. Each provider has its own fields; a field another provider
uses, a misspelt one or a missing required one is refused with its name.
Pure data and parsing: imported by spawner/settings.py (no JupyterHub here).
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

NATIVE = "native"


def _text(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise ValueError("expected a non-empty string")
    return str(value).strip()


def _url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s) URL")
    return text


def _names(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("expected a non-empty list")
    return [_text(item) for item in items]


def _one_name(value: Any) -> list[str]:
    names = _names(value)
    if len(names) != 1:
        raise ValueError("expected one domain (usernames are the part before @, unique within one domain)")
    return names


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a number of seconds")
    return value


# field: (parser, help). Common to every provider:
COMMON: dict[str, tuple[Callable[[Any], Any], str]] = {
    "allowed_users": (_names, "provider usernames allowed besides allowed_groups"),
    "blocked_users": (_names, "usernames refused even when allowed otherwise"),
}
# Common to the OAuth providers (not native):
OAUTH: dict[str, tuple[Callable[[Any], Any], str]] = {
    "client_id": (_text, "the hub's client id, registered with the provider"),
    "scopes": (_names, "scopes the hub asks for"),
    "allowed_groups": (_names, "provider groups whose members may sign in"),
    "admin_groups": (_names, "provider groups whose members are hub admins"),
    "refresh_age": (_seconds, "seconds after which a user's groups are read again from the provider"),
}
PROVIDERS: dict[str, dict[str, tuple[Callable[[Any], Any], str]]] = {
    NATIVE: {},
    "oidc": {
        "issuer": (_url, "the provider's issuer; ID tokens must name it"),
        "authorize_url": (_url, "authorization endpoint, as the browser reaches it"),
        "token_url": (_url, "token endpoint, as the hub reaches it"),
        "userdata_url": (_url, "userinfo endpoint, as the hub reaches it"),
        "username_claim": (_text, "userinfo claim holding the username"),
        "groups_claim": (_text, "userinfo claim holding the list of groups"),
        "login_service": (_text, "what the sign-in button names, e.g. University SSO"),
    },
    "github": {
        "organizations": (_names, "GitHub organisations (or org:team) whose members may sign in"),
        "github_url": (_url, "GitHub Enterprise's URL"),
    },
    "gitlab": {
        "gitlab_groups": (_names, "GitLab groups whose members may sign in"),
        "gitlab_url": (_url, "a self-hosted GitLab's URL"),
    },
    "google": {
        # One domain: oauthenticator then strips "@domain", so names fit the platform's rule.
        "hosted_domain": (_one_name, "the Google Workspace domain whose users may sign in"),
    },
}
REQUIRED = {
    NATIVE: (),
    "oidc": ("client_id", "authorize_url", "token_url", "userdata_url"),
    "github": ("client_id",),
    "gitlab": ("client_id",),
    "google": ("client_id", "hosted_domain"),
}
# Without one of these nobody but an admin_users name could sign in.
GATES = {
    NATIVE: (),
    "oidc": ("allowed_groups", "allowed_users"),
    "github": ("organizations", "allowed_users"),
    "gitlab": ("gitlab_groups", "allowed_users"),
    "google": ("hosted_domain",),
}
# Groups the provider reports, which become JupyterHub groups at each login.
GROUP_PROVIDERS = ("oidc", "github")
OIDC_DEFAULTS = {
    "scopes": ["openid", "profile", "groups"],
    "username_claim": "preferred_username",
    "groups_claim": "groups",
}
REFRESH_AGE = 300


def fields(provider: str) -> dict[str, tuple[Callable[[Any], Any], str]]:
    """The fields ``provider`` accepts besides ``provider``."""
    return {**COMMON, **({} if provider == NATIVE else OAUTH), **PROVIDERS[provider]}


def parse_auth(value: Any) -> dict[str, Any]:
    """``native``, or ``{provider: NAME, field: value...}`` checked against NAME's fields."""
    if isinstance(value, str):
        value = {"provider": value.strip().lower()}
    if not isinstance(value, dict):
        raise ValueError("expected 'native' or a mapping with a 'provider' key")
    provider = str(value.get("provider", "")).strip().lower()
    if provider not in PROVIDERS:
        raise ValueError(f"auth.provider: expected one of {', '.join(PROVIDERS)}")
    known = fields(provider)
    auth: dict[str, Any] = {"provider": provider}
    for key, raw in value.items():
        if key == "provider":
            continue
        if key not in known:
            raise ValueError(f"auth.{key} is not a field of provider {provider} (its fields: {', '.join(known)})")
        try:
            auth[key] = known[key][0](raw)
        except ValueError as e:
            raise ValueError(f"auth.{key}: {e}") from None
    for key in REQUIRED[provider]:
        if key not in auth:
            raise ValueError(f"auth.{key} is missing: provider {provider} needs it ({known[key][1]})")
    if GATES[provider] and not any(key in auth for key in GATES[provider]):
        raise ValueError(f"provider {provider} needs one of auth.{' or auth.'.join(GATES[provider])} (who may sign in)")
    if provider not in GROUP_PROVIDERS:
        for key in ("allowed_groups", "admin_groups"):
            if key in auth:
                raise ValueError(f"auth.{key}: provider {provider} reports no groups (use oidc or github)")
    if provider == "oidc":
        auth = {**OIDC_DEFAULTS, **auth}
    if provider != NATIVE:
        auth.setdefault("refresh_age", REFRESH_AGE)
    return auth


def callback_url(public_url: str, port: int) -> str:
    """The redirect URI to register with the provider."""
    base = public_url.rstrip("/") if public_url else f"http://127.0.0.1:{port}"
    return f"{base}/hub/oauth_callback"
