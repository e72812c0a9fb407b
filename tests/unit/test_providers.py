"""The auth setting (spawner/providers.py): each provider's fields, and a clear
refusal naming the field for anything else."""

import pytest

from spawner.providers import GATES, PROVIDERS, REQUIRED, callback_url, fields, parse_auth
from spawner.settings import SettingsError, load_settings

OIDC = {
    "provider": "oidc",
    "client_id": "gpuhub",
    "authorize_url": "https://sso.example.org/auth",
    "token_url": "http://idp:8080/token",
    "userdata_url": "http://idp:8080/me",
    "allowed_groups": ["lab"],
}
# The smallest valid mapping of each provider.
MINIMAL = {
    "native": {"provider": "native"},
    "oidc": OIDC,
    "github": {"provider": "github", "client_id": "Iv1.1", "organizations": ["mylab"]},
    "gitlab": {"provider": "gitlab", "client_id": "abc", "gitlab_groups": ["mylab"]},
    "google": {"provider": "google", "client_id": "1.apps", "hosted_domain": ["example.org"]},
}


def test_every_provider_has_a_minimal_example_and_its_tables():
    assert set(MINIMAL) == set(PROVIDERS) == set(REQUIRED) == set(GATES)


def test_native_is_the_default_and_a_plain_name():
    assert load_settings({})["auth"] == {"provider": "native"}
    assert parse_auth("Native") == {"provider": "native"}
    assert parse_auth({"provider": "native", "blocked_users": ["mallory"]})["blocked_users"] == ["mallory"]


@pytest.mark.parametrize("provider", sorted(MINIMAL))
def test_minimal_mappings_parse(provider):
    auth = parse_auth(MINIMAL[provider])
    assert {k: auth[k] for k in MINIMAL[provider]} == MINIMAL[provider]
    assert set(auth) - {"provider"} <= set(fields(provider))


def test_oidc_defaults_its_claims_scopes_and_refresh_age():
    auth = parse_auth(OIDC)
    assert auth["scopes"] == ["openid", "profile", "groups"]
    assert (auth["username_claim"], auth["groups_claim"], auth["refresh_age"]) == ("preferred_username", "groups", 300)
    assert parse_auth({**OIDC, "scopes": "openid", "refresh_age": 0})["scopes"] == ["openid"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"provider": "okta"}, r"auth.provider: expected one of native, oidc"),
        ({"client_secret": "s3cret"}, r"auth.client_secret is not a field of provider oidc"),
        ({"organizations": ["lab"]}, r"auth.organizations is not a field of provider oidc"),
        ({"tokne_url": "http://x/"}, r"auth.tokne_url is not a field"),
        ({"token_url": None}, r"auth.token_url: expected a non-empty string"),
        ({"token_url": "ftp://idp/token"}, r"auth.token_url: expected an http\(s\) URL"),
        ({"allowed_groups": []}, r"auth.allowed_groups: expected a non-empty list"),
        ({"refresh_age": -1}, r"auth.refresh_age: expected a number of seconds"),
    ],
)
def test_bad_fields_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        parse_auth({**OIDC, **change})


@pytest.mark.parametrize("missing", REQUIRED["oidc"])
def test_a_missing_required_field_is_named(missing):
    with pytest.raises(ValueError, match=rf"auth.{missing} is missing: provider oidc needs it"):
        parse_auth({k: v for k, v in OIDC.items() if k != missing})


def test_a_provider_without_a_gate_is_refused():
    with pytest.raises(ValueError, match="needs one of auth.allowed_groups or auth.allowed_users"):
        parse_auth({k: v for k, v in OIDC.items() if k != "allowed_groups"})
    assert parse_auth({**{k: v for k, v in OIDC.items() if k != "allowed_groups"}, "allowed_users": ["ada"]})


@pytest.mark.parametrize("provider", ["gitlab", "google"])
def test_groups_only_where_the_provider_reports_them(provider):
    with pytest.raises(ValueError, match=f"auth.admin_groups: provider {provider} reports no groups"):
        parse_auth({**MINIMAL[provider], "admin_groups": ["admins"]})


def test_native_takes_no_provider_fields():
    with pytest.raises(ValueError, match="auth.client_id is not a field of provider native"):
        parse_auth({"provider": "native", "client_id": "x"})


def test_settings_file_and_variable_name_the_source(tmp_path):
    f = tmp_path / "settings.yml"
    f.write_text("auth:\n  provider: github\n  client_id: Iv1.1\n  organisations: [lab]\n")
    with pytest.raises(SettingsError, match=r"settings.yml: bad value for 'auth'.*auth.organisations is not a field"):
        load_settings({"GPUHUB_SETTINGS_FILE": str(f)})
    auth = load_settings({"GPUHUB_AUTH": "{provider: github, client_id: Iv1.1, organizations: [lab]}"})["auth"]
    assert auth["organizations"] == ["lab"]
    with pytest.raises(SettingsError, match="GPUHUB_AUTH: bad value for 'auth'"):
        load_settings({"GPUHUB_AUTH": "oidc"})


@pytest.mark.parametrize(
    "value", ["gpu.example.org", "https://", "https://x/?a=1", "https://x/lab/", "https://a@x/", "javascript:alert(1)"]
)
def test_public_url_must_be_an_http_url(value):
    with pytest.raises(SettingsError, match="public_url"):
        load_settings({"GPUHUB_PUBLIC_URL": value})


def test_callback_url_follows_public_url_else_the_local_port():
    assert load_settings({"GPUHUB_PUBLIC_URL": "https://gpu.example.org:8443"})["public_url"] == (
        "https://gpu.example.org:8443/"
    )
    assert callback_url("", 8000) == "http://127.0.0.1:8000/hub/oauth_callback"
    assert callback_url("https://gpu.example.org/", 8000) == "https://gpu.example.org/hub/oauth_callback"


def test_google_takes_exactly_one_domain_so_that_names_fit_the_rule():
    with pytest.raises(ValueError, match="auth.hosted_domain: expected one domain"):
        parse_auth({**MINIMAL["google"], "hosted_domain": ["a.org", "b.org"]})
    with pytest.raises(ValueError, match="auth.hosted_domain is missing"):
        parse_auth({"provider": "google", "client_id": "1.apps", "allowed_users": ["ada"]})
