"""Spawn profiles in KubeSpawner's ``profile_list`` shape, as small pure functions.

Form: ``options_from_form`` -> ``validate_options`` -> ``resolve_overrides``; REST
``user_options`` skip the first step. Functions work on deep copies, never mutating the
configured profiles. ``kubespawner_override`` is an alias of ``spawner_override``. Each
override key names a setting of the spawner, as in KubeSpawner: the values this module
knows (gpus, sizes, image...) are checked here, every key by the ``check`` the spawner
hands to ``normalize_profiles``. ``merge`` is the one deep-merge of the package.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from .leases import check_count, is_count
from .messages import shown
from .sizes import parse_size

PROFILE_FIELD = "profile"
OPTION_FIELD_PREFIX = "profile-option-"
IGNORED_FORM_FIELDS = frozenset({"_xsrf"})
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ProfileError(ValueError):
    """A bad profile choice (or a bad profile configuration)."""


def _listed(values: Sequence[object], most: int = 5) -> str:
    text = ", ".join(shown(v) for v in list(values)[:most])
    return text if len(values) <= most else f"{text} and {len(values) - most} more"


def _builtin(slug: str, name: str, text: str, override: dict, **flags: bool) -> dict[str, Any]:
    return {"display_name": name, "slug": slug, "description": text,
            "spawner_override": override, **flags}  # fmt: skip


# Sites override these; cpu_limit stays small because Docker refuses more CPUs than the host has.
DEFAULT_PROFILES: list[dict[str, Any]] = [
    _builtin("cpu", "CPU only", "No GPU: 2 CPUs, 8 GB memory.",
             {"gpus": 0, "mem_limit": "8G", "cpu_limit": 2, "shm_size": "1G"}, default=True),
    _builtin("gpu-1", "1 GPU", "One whole GPU: 4 CPUs, 32 GB memory.",
             {"gpus": 1, "mem_limit": "32G", "cpu_limit": 4, "shm_size": "2G"}),
    _builtin("gpu-2", "2 GPUs", "Two whole GPUs: 8 CPUs, 64 GB memory.",
             {"gpus": 2, "mem_limit": "64G", "cpu_limit": 8, "shm_size": "4G"}),
    _builtin("gpu-all", "All GPUs (admins)", "Every GPU, with the site's default CPU and memory limits.",
             {"gpus": "all", "shm_size": "8G"}, admin_only=True),
]  # fmt: skip


def _is_size(value: object) -> bool:
    try:
        parse_size(value)
    except ValueError:
        return False
    return True


def _is_cpus(value: object) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value is None or (number and value > 0)  # type: ignore[operator]


_CHECKS = {
    "gpus": (lambda v: is_count(v) or v == "all", 'a non-negative integer or "all"'),
    "gpu_shared": (lambda v: isinstance(v, bool), "true or false"),
    "mem_limit": (lambda v: v is None or _is_size(v), 'a size such as "8G", or None (no limit)'),
    "shm_size": (_is_size, 'a size such as "2G"'),
    "cpu_limit": (_is_cpus, "a positive number, or None"),
    "image": (lambda v: isinstance(v, str) and bool(v), "an image name"),
}


# Override keys whose values are checked here; the spawner checks the others against its traits.
CHECKED_KEYS = frozenset(_CHECKS)

# check(key, value) -> None, or a sentence saying why a profile may not set ``key`` to ``value``.
OverrideCheck = Callable[[str, Any], "str | None"]


def _override(item: Mapping[str, Any], where: str, check: OverrideCheck | None) -> dict[str, Any]:
    own, alias = item.get("spawner_override"), item.get("kubespawner_override")
    if own is not None and alias is not None:
        raise ProfileError(f"{where}: give spawner_override or kubespawner_override, not both")
    override = own if own is not None else (alias or {})
    if not isinstance(override, Mapping):
        raise ProfileError(f"{where}: spawner_override must be a mapping")
    override = dict(override)
    limits = override.get("extra_resource_limits")
    if isinstance(limits, Mapping) and "nvidia.com/gpu" in limits:  # a KubeSpawner GPU profile
        gpu_limit = limits["nvidia.com/gpu"]
        if not str(gpu_limit).isdigit():
            raise ProfileError(f"{where}: nvidia.com/gpu={gpu_limit!r} is not a GPU count")
        override.setdefault("gpus", int(gpu_limit))
        rest = {key: value for key, value in limits.items() if key != "nvidia.com/gpu"}
        if rest:
            override["extra_resource_limits"] = rest
        else:
            del override["extra_resource_limits"]
    for key, (ok, expected) in _CHECKS.items():
        if key in override and not ok(override[key]):
            raise ProfileError(f"{where}: {key}={override[key]!r} must be {expected}")
    for key, value in override.items():
        problem = check(key, value) if check else None
        if problem:
            raise ProfileError(f"{where}: {problem}")
    return override


def _slug(value: object, where: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise ProfileError(f"{where}: {value!r} is not a valid slug (letters, digits, _ . -)")
    return value


def _normalize_profile(raw: Any, check: OverrideCheck | None = None) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("display_name"), str):
        raise ProfileError(f"Profile configuration: {raw!r} needs a display_name")
    raw = copy.deepcopy(dict(raw))
    fallback = re.sub(r"[^a-z0-9]+", "-", raw["display_name"].lower()).strip("-")
    slug = _slug(raw.get("slug") or fallback, "Profile configuration")
    where = f"Profile {slug!r}"
    options: dict[str, Any] = {}
    for name, option in (raw.get("profile_options") or {}).items():
        _slug(name, f"{where} option")
        if name in (PROFILE_FIELD, "gpus") or not isinstance(option, Mapping):
            raise ProfileError(f"{where}: option {name!r} is reserved or not a mapping")
        choices = {}
        for key, choice in (option.get("choices") or {}).items():
            if not isinstance(choice, Mapping):
                raise ProfileError(f"{where}: choice {key!r} of option {name!r} is not a mapping")
            _slug(key, f"{where} option {name!r} choice")
            choices[key] = {
                "display_name": str(choice.get("display_name", key)),
                "default": bool(choice.get("default", False)),
                "spawner_override": _override(choice, f"{where} option {name!r} choice {key!r}", check),
            }
        if not choices or sum(c["default"] for c in choices.values()) > 1:
            raise ProfileError(f"{where}: option {name!r} needs choices, at most one default")
        options[name] = {"display_name": str(option.get("display_name", name)), "choices": choices}
    groups = raw.get("allowed_groups") or []
    if isinstance(groups, str) or not isinstance(groups, Sequence) or not all(isinstance(g, str) and g for g in groups):
        raise ProfileError(f"{where}: allowed_groups must be a list of group names, got {shown(groups)}")
    timeout = raw.get("idle_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0):
        raise ProfileError(f"{where}: idle_timeout must be whole seconds (0: never culled), got {shown(timeout)}")
    raw.update(
        slug=slug,
        description=str(raw.get("description", "")),
        default=bool(raw.get("default", False)),
        admin_only=bool(raw.get("admin_only", False)),
        allowed_groups=list(groups),
        spawner_override=_override(raw, where, check),
        profile_options=options,
    )
    raw.pop("kubespawner_override", None)
    return raw


def normalize_profiles(
    profiles: Sequence[Mapping[str, Any]], check: OverrideCheck | None = None
) -> list[dict[str, Any]]:
    """Checked deep copies with every key filled in; ProfileError on bad configuration.

    ``check(key, value)`` is asked about every override key, of profiles and of choices;
    a sentence it returns is the error, prefixed with the profile (and choice) it is in.
    """
    if isinstance(profiles, (str, bytes)) or not isinstance(profiles, Sequence) or not profiles:
        raise ProfileError("Profile configuration: profile_list must be a non-empty list")
    result = [_normalize_profile(p, check) for p in profiles]
    slugs = [p["slug"] for p in result]
    if len(set(slugs)) != len(slugs):
        raise ProfileError(f"Profile configuration: duplicate slugs in {slugs}")
    if sum(p["default"] for p in result) > 1:
        raise ProfileError("Profile configuration: more than one profile has default: true")
    return result


def options_from_form(formdata: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Turn the spawn form (KubeSpawner field names) into ``user_options``.

    Keeps ``profile`` and the selected profile's ``profile-option-<slug>--<name>``
    fields, drops other profiles' option fields, raises ProfileError on any other.
    """
    options: dict[str, Any] = {}
    picked = list(formdata.get(PROFILE_FIELD) or [])
    if len(picked) > 1:
        raise ProfileError(f"Pick one profile, not {len(picked)}: {_listed(picked)}")
    if picked:
        options[PROFILE_FIELD] = picked[0]
    prefix = f"{OPTION_FIELD_PREFIX}{picked[0]}--" if picked else None
    unknown = []
    for field, values in formdata.items():
        if field == PROFILE_FIELD or field in IGNORED_FORM_FIELDS:
            continue
        if prefix and field.startswith(prefix):
            if len(values) != 1:
                raise ProfileError(f"Form field {shown(field)} needs exactly one value")
            options[field[len(prefix) :]] = values[0]
        elif not field.startswith(OPTION_FIELD_PREFIX):
            unknown.append(field)
    if unknown:
        raise ProfileError(
            f"Unknown form field(s): {_listed(sorted(unknown))}; expected "
            f"'{PROFILE_FIELD}' and '{OPTION_FIELD_PREFIX}<profile>--<option>'"
        )
    return options


def _default_choice(option: Mapping[str, Any]) -> str:
    choices = option["choices"]
    return next((k for k, c in choices.items() if c["default"]), next(iter(choices)))


def merge(base: Mapping[str, Any], override: Mapping[str, Any], *, drop_none: bool = False) -> dict[str, Any]:
    """A deep copy of ``base`` with ``override`` merged in: mappings key by key, all else replaced.

    With ``drop_none``, a None in ``override`` removes its key, as JupyterHub and KubeSpawner
    do when they apply an override onto a setting; without, None is a value, so that the
    layers of one profile combine before they are applied (and their None still removes).
    """
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None and drop_none:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            inner = result.get(key)
            result[key] = merge(inner if isinstance(inner, Mapping) else {}, value, drop_none=drop_none)
        else:
            result[key] = copy.deepcopy(value)
    return result


def validate_options(
    profiles: Sequence[Mapping[str, Any]], user_options: Mapping[str, Any], *, is_admin: bool
) -> dict[str, Any]:
    """Check ``user_options`` against the profiles and return the chosen profile (a copy).

    Accepted keys: ``profile`` (a slug; absent means the default profile), the
    chosen profile's option names (a choice slug each) and ``gpus`` (an int
    from 0 to the profile's count). Anything else raises ProfileError.
    """
    profiles = normalize_profiles(profiles)
    if not isinstance(user_options, Mapping):
        raise ProfileError(f"user_options must be a mapping, got {shown(user_options)}")
    visible = [p for p in profiles if is_admin or not p["admin_only"]]
    if not visible:
        raise ProfileError("No profile is available to you; ask an admin")
    slug = user_options.get(PROFILE_FIELD)
    offered = ", ".join(p["slug"] for p in visible)
    if slug is None:
        profile = next((p for p in visible if p["default"]), visible[0])
    else:
        profile = next((p for p in profiles if p["slug"] == slug), None)
        if profile is None:
            raise ProfileError(f"Unknown profile {shown(slug)}; available: {offered}")
        if profile["admin_only"] and not is_admin:
            raise ProfileError(f"Profile {slug!r} is for admins only; available: {offered}")
    options = profile["profile_options"]
    allowed = [PROFILE_FIELD, *options, "gpus"]
    unknown = [key for key in user_options if key not in allowed]
    if unknown:
        raise ProfileError(
            f"Unknown option(s) {_listed(unknown)} for profile {profile['slug']!r}; allowed: {', '.join(allowed)}"
        )
    for name, option in options.items():
        value = user_options.get(name)
        if value is not None and (not isinstance(value, str) or value not in option["choices"]):
            raise ProfileError(
                f"{shown(value)} is not offered for option {name!r} of profile {profile['slug']!r}; "
                f"choices: {', '.join(option['choices'])}"
            )
    if "gpus" in user_options:
        wanted = user_options["gpus"]
        try:
            check_count(wanted, "gpus")
        except ValueError as e:
            raise ProfileError(str(e)) from None
        cap = resolve_overrides(profile, {k: v for k, v in user_options.items() if k != "gpus"})
        if cap["gpus"] != "all" and wanted > cap["gpus"]:
            raise ProfileError(f"gpus={wanted} is above the {cap['gpus']} of {profile['slug']!r}")
    return profile


def resolve_overrides(profile: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Final settings: profile override, then each chosen (or default) option, then ``gpus``.

    ``options`` must have passed ``validate_options``; "all" GPUs: ``resolve_gpu_count``.
    """
    profile = _normalize_profile(profile)
    settings = merge({"gpus": 0, "gpu_shared": False}, profile["spawner_override"])
    for name, option in profile["profile_options"].items():
        choice = options.get(name) or _default_choice(option)
        settings = merge(settings, option["choices"][choice]["spawner_override"])
    if "gpus" in options:
        settings["gpus"] = options["gpus"]
    return settings


def resolve_gpu_count(value: int | str, inventory_size: int) -> int:
    """Turn a settings ``gpus`` value ("all" or an int) into a count this server can hold."""
    if value == "all":
        if inventory_size == 0:
            raise ProfileError("This profile asks for all GPUs, but this server has none")
        return inventory_size
    if not is_count(value):
        raise ProfileError(f'gpus must be a non-negative integer or "all", got {shown(value)}')
    if value > inventory_size:  # type: ignore[operator]
        raise ProfileError(f"This asks for {value} GPUs, but this server has {inventory_size}")
    return int(value)


def render_form(profiles: Sequence[Mapping[str, Any]], *, is_admin: bool, offers: Sequence[Any] | None = None) -> str:
    """HTML for the spawn page: a radio per visible profile, a <select> per option.

    ``offers`` (``availability.offers``) say which profiles are shown, in order, with a
    note (free GPUs, quota) and why one cannot start now: that one is shown disabled.
    """
    normalized = normalize_profiles(profiles)
    if offers is None:
        visible, status = [p for p in normalized if is_admin or not p["admin_only"]], {}
    else:
        status = {offer.slug: offer for offer in offers}
        visible = [p for p in normalized if p["slug"] in status]
    if not visible:
        return "<p>No profile is available to you; ask an admin.</p>"
    startable = [p for p in visible if getattr(status.get(p["slug"]), "reason", None) is None] or visible
    checked = next((p for p in startable if p["default"]), startable[0])["slug"]
    parts = ['<div class="gpuhub-profiles">']
    for profile in visible:
        slug = escape(profile["slug"])
        offer = status.get(profile["slug"])
        reason = offer.reason if offer else None
        mark = " checked" if profile["slug"] == checked and not reason else ""
        off = " disabled" if reason else ""
        lines = [
            f"<strong>{escape(profile['display_name'])}</strong>",
            f"<small>{escape(profile['description'])}</small>",
        ]
        if offer and offer.note:
            lines.append(f'<small class="gpuhub-gpus">{escape(offer.note)}</small>')
        if reason:
            lines.append(f'<small class="gpuhub-unavailable text-danger">Cannot start now: {escape(reason)}</small>')
        parts += [
            f'<div class="form-check mb-3{" text-muted" if reason else ""}">',
            f'<input class="form-check-input" type="radio" name="{PROFILE_FIELD}" '
            f'id="profile-item-{slug}" value="{slug}"{mark}{off}>',
            f'<label class="form-check-label" for="profile-item-{slug}">{"<br>".join(lines)}</label>',
        ]
        for name, option in profile["profile_options"].items():
            field = escape(f"{OPTION_FIELD_PREFIX}{profile['slug']}--{name}")
            parts.append(
                f'<div class="ms-4 mt-1"><label for="{field}">{escape(option["display_name"])}'
                f'</label> <select class="form-select" name="{field}" id="{field}"{off}>'
            )
            for key, choice in option["choices"].items():
                sel = " selected" if key == _default_choice(option) else ""
                text = escape(choice["display_name"])
                parts.append(f'<option value="{escape(key)}"{sel}>{text}</option>')
            parts.append("</select></div>")
        parts.append("</div>")
    parts.append("</div>")
    return "\n".join(parts)
