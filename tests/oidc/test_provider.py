"""The test identity provider alone (tests/oidc/provider), as the hub will meet
it: real Chromium through its login and consent pages, the back channel with
requests, a real container on a Docker network of its own."""

import base64
import hashlib
import json
import secrets
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from spawner.labels import LABEL_DEPLOYMENT
from tests.deployment import PORT, PREFIX
from tests.oidc.idp import TOKEN, USERINFO, TestProvider, build

pytestmark = pytest.mark.integration

NAME = f"{PREFIX}-idp-alone"  # the provider's container and its network (test_login.py's are PREFIX-oidc*)
IDP_PORT = PORT + 860
# Nothing listens there: the browser's arrival is caught by Playwright.
REDIRECT_URI = f"http://127.0.0.1:{PORT + 861}/hub/oauth_callback"
PASSWORD = {"ada": uuid.uuid4().hex, "mallory": uuid.uuid4().hex}
USERS = {
    "ada": {"password": PASSWORD["ada"], "preferred_username": "Dana.Smith", "name": "Ada L.",
            "email": "ada@example.org", "groups": ["lab", "bigjobs"]},
    # A hostile name the hub must normalise or refuse; the provider hands it over as it is.
    "mallory": {"password": PASSWORD["mallory"], "preferred_username": "../etc bad name!", "groups": []},
}  # fmt: skip


@pytest.fixture(scope="module")
def idp(docker_client):
    labels = {LABEL_DEPLOYMENT: PREFIX}
    provider = TestProvider(
        docker_client, NAME, NAME, "idp", IDP_PORT, "hub", secrets.token_hex(16), [REDIRECT_URI], USERS, labels=labels
    )
    provider.remove()  # leftovers of an interrupted run
    for network in docker_client.networks.list(names=[NAME]):
        if network.name == NAME:  # the engine's name filter also matches longer names
            network.remove()
    network = docker_client.networks.create(NAME, labels=labels)
    try:
        provider.start()
        provider.wait_ready()
        yield provider
    finally:
        provider.remove()
        network.remove()


@pytest.fixture
def clean_idp(idp):
    """The module's provider, its faults cleared and its users' groups as configured."""
    idp.set_faults()
    for user, claims in USERS.items():
        idp.set_groups(user, claims["groups"])
    return idp


def authorize(page, idp, user: str, password: str, decision: str = "allow", **extra: str) -> dict:
    """Log in and decide in the browser; return the redirect's query and the PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    arrived = []

    def callback(route):
        arrived.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="the client's callback")

    page.route(lambda url: url.startswith(REDIRECT_URI), callback)
    params = {
        "client_id": idp.client_id, "response_type": "code", "scope": "openid profile email groups",
        "redirect_uri": REDIRECT_URI, "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }  # fmt: skip
    page.goto(f"{idp.authorize_url}?{urlencode(params)}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#login")
    page.click(f"#{decision}")
    page.wait_for_url(lambda url: url.startswith(REDIRECT_URI))
    query = {key: values[0] for key, values in parse_qs(urlsplit(arrived[-1]).query).items()}
    assert query.pop("state") == state
    return {**query, "verifier": verifier, "nonce": nonce}


def exchange(idp, code: str, verifier: str, secret: str | None = None, method: str = "basic") -> requests.Response:
    """The code at the token endpoint, the client authenticated by HTTP Basic or,
    as oauthenticator does by default, in the form (client_secret_post)."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    credentials = {"client_id": idp.client_id, "client_secret": secret or idp.client_secret}
    if method == "post":
        return requests.post(idp.url(TOKEN), data={**data, **credentials}, timeout=10)
    return requests.post(idp.url(TOKEN), data=data, auth=tuple(credentials.values()), timeout=10)


def login_tokens(page, idp, user: str, **extra: str) -> dict:
    """The token response of a full login of ``user``; its nonce added."""
    result = authorize(page, idp, user, PASSWORD[user], **extra)
    r = exchange(idp, result["code"], result["verifier"])
    assert r.status_code == 200, r.text
    return {**r.json(), "nonce": result["nonce"]}


def userinfo(idp, access_token: str) -> dict:
    r = requests.get(idp.url(USERINFO), headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_claims(idp, id_token: str) -> dict:
    """The ID token's claims, its RS256 signature checked against the provider's JWKS."""
    header, payload, signature = id_token.split(".")
    head = json.loads(unb64(header))
    assert head["alg"] == "RS256"
    (jwk,) = [key for key in requests.get(idp.url("/jwks"), timeout=10).json()["keys"] if key["kid"] == head["kid"]]
    e, n = (int.from_bytes(unb64(jwk[field]), "big") for field in ("e", "n"))
    rsa.RSAPublicNumbers(e, n).public_key().verify(
        unb64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return json.loads(unb64(payload))


def test_discovery_names_the_endpoints_the_helper_gives(idp):
    meta = requests.get(idp.url("/.well-known/openid-configuration"), timeout=10).json()
    assert meta["issuer"] == idp.issuer
    assert meta["authorization_endpoint"] == idp.authorize_url
    assert meta["token_endpoint"] == idp.url(TOKEN)
    assert meta["userinfo_endpoint"] == idp.url(USERINFO)
    assert {"openid", "profile", "email", "groups"} <= set(meta["scopes_supported"])
    assert {"preferred_username", "name", "email", "groups"} <= set(meta["claims_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_other_containers_reach_the_provider_by_its_alias(idp, docker_client):
    url = f"{idp.internal_url}/.well-known/openid-configuration"
    fetch = f"fetch('{url}').then((r) => r.json()).then((m) => console.log(m.token_endpoint))"
    out = docker_client.containers.run(
        build(docker_client), ["node", "-e", fetch], name=f"{NAME}-probe", labels=idp.labels, network=idp.network,
        remove=True,
    )  # fmt: skip
    # Discovery follows the Host header: from the hub's side the endpoints are the helper's container-facing ones.
    assert out.decode().strip() == idp.token_url


@pytest.mark.parametrize("user", sorted(USERS))
def test_code_flow_in_chromium_gives_the_users_claims_at_userinfo(clean_idp, page, user):
    result = authorize(page, clean_idp, user, PASSWORD[user])
    assert result["iss"] == clean_idp.issuer
    tokens = exchange(clean_idp, result["code"], result["verifier"])
    assert tokens.status_code == 200, tokens.text
    tokens = tokens.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 3000
    claims = verified_claims(clean_idp, tokens["id_token"])
    assert (claims["aud"], claims["iss"], claims["sub"]) == (clean_idp.client_id, clean_idp.issuer, user)
    assert claims["nonce"] == result["nonce"]
    expected = {key: value for key, value in USERS[user].items() if key != "password"}
    assert userinfo(clean_idp, tokens["access_token"]) == {"sub": user, **expected}


def test_the_code_is_refused_without_its_pkce_verifier(clean_idp, page):
    result = authorize(page, clean_idp, "ada", PASSWORD["ada"])
    r = exchange(clean_idp, result["code"], secrets.token_urlsafe(48))
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_changed_groups_show_at_the_next_userinfo(clean_idp, page):
    access_token = login_tokens(page, clean_idp, "ada")["access_token"]
    clean_idp.set_groups("ada", ["lab", "new-group"])
    assert userinfo(clean_idp, access_token)["groups"] == ["lab", "new-group"]
    clean_idp.set_groups("ada", [])
    assert userinfo(clean_idp, access_token)["groups"] == []


def test_a_refresh_token_gives_a_new_access_token_that_sees_changed_groups(clean_idp, page):
    # oidc-provider grants offline_access only with prompt=consent.
    scope = "openid profile groups offline_access"
    tokens = login_tokens(page, clean_idp, "ada", scope=scope, prompt="consent")
    clean_idp.set_groups("ada", ["after-refresh"])
    r = requests.post(
        clean_idp.url(TOKEN),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(clean_idp.client_id, clean_idp.client_secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["access_token"] != tokens["access_token"]
    assert userinfo(clean_idp, r.json()["access_token"])["groups"] == ["after-refresh"]


@pytest.mark.parametrize("method", ["basic", "post"])
def test_wrong_client_secret_is_invalid_client_and_leaves_the_code_usable(clean_idp, page, method):
    result = authorize(page, clean_idp, "ada", PASSWORD["ada"])
    r = exchange(clean_idp, result["code"], result["verifier"], secret="not-the-secret", method=method)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    r = exchange(clean_idp, result["code"], result["verifier"], method=method)
    assert r.status_code == 200 and r.json()["access_token"], r.text


def test_bad_password_shows_the_login_form_again_with_an_error(clean_idp, page):
    page.goto(f"{clean_idp.authorize_url}?" + urlencode({
        "client_id": clean_idp.client_id, "response_type": "code", "scope": "openid", "redirect_uri": REDIRECT_URI,
    }))  # fmt: skip
    for user in ("ada", "nobody", '"><script>alert(1)</script>'):
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", "wrong")
        with page.expect_navigation() as navigation:
            page.click("#login")
        assert navigation.value.status == 200
        assert page.inner_text("#error") == "Wrong username or password."
        assert page.input_value("input[name=username]") == user  # the hostile one as text, not markup
        assert page.locator("script").count() == 0
    page.fill("input[name=password]", PASSWORD["ada"])
    page.fill("input[name=username]", "ada")
    page.click("#login")
    assert page.locator("#allow").is_visible()


def test_a_login_form_posted_by_another_site_is_refused(clean_idp, page):
    """Login CSRF: another site's page submits the attacker's credentials into
    the victim's pending sign-in; the interaction cookie (SameSite=Lax) stays home."""
    page.goto(f"{clean_idp.authorize_url}?" + urlencode({
        "client_id": clean_idp.client_id, "response_type": "code", "scope": "openid", "redirect_uri": REDIRECT_URI,
    }))  # fmt: skip
    interaction_url = page.url
    login_url = interaction_url + "/login"
    evil = f"""<form method="post" action="{login_url}"><input name="username" value="mallory">
        <input name="password" value="{PASSWORD["mallory"]}"></form><script>document.forms[0].submit()</script>"""
    page.route("http://evil.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=evil))
    with page.expect_navigation(url=login_url) as navigation:
        page.goto("http://evil.test/")
    assert navigation.value.status == 400
    assert "interaction session id cookie not found" in page.inner_text("#error")
    page.goto(interaction_url)  # the victim's own sign-in goes on, as the victim
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD["ada"])
    page.click("#login")
    assert page.locator("#allow").is_visible()


def test_deny_sends_access_denied_to_the_client(clean_idp, page):
    result = authorize(page, clean_idp, "ada", PASSWORD["ada"], decision="deny")
    assert result["error"] == "access_denied" and "code" not in result


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_control_api_refuses_without_its_key_and_changes_nothing(clean_idp, page, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = requests.put(clean_idp.url("/test/users/ada/groups"), json=["admins"], headers=headers, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = requests.put(
        clean_idp.url("/test/faults"),
        json={"id_token_audience": clean_idp.other_client_id},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 401
    tokens = login_tokens(page, clean_idp, "ada")
    assert verified_claims(clean_idp, tokens["id_token"])["aud"] == clean_idp.client_id
    assert userinfo(clean_idp, tokens["access_token"])["groups"] == USERS["ada"]["groups"]


def test_control_api_refuses_bad_input_and_changes_nothing(clean_idp, page):
    bad = [
        ("/test/users/ada/groups", {"not": "a list"}, 400),
        ("/test/users/ada/groups", ["lab", 3], 400),
        ("/test/users/nobody/groups", ["lab"], 404),
        ("/test/users/%E0%A4/groups", ["lab"], 400),
        ("/test/faults", {"id_token_audience": "anyone-at-all"}, 400),
        ("/test/faults", {"id_token_audience": clean_idp.other_client_id, "unknown_fault": True}, 400),
    ]
    headers = {"Authorization": f"Bearer {clean_idp.control_key}"}
    for path, body, status in bad:
        r = requests.put(clean_idp.url(path), json=body, headers=headers, timeout=10)
        assert (r.status_code, bool(r.json()["error"])) == (status, True), (path, body, r.text)
    r = requests.put(
        clean_idp.url("/test/faults"), data="{", headers={**headers, "Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    tokens = login_tokens(page, clean_idp, "ada")
    assert verified_claims(clean_idp, tokens["id_token"])["aud"] == clean_idp.client_id
    assert userinfo(clean_idp, tokens["access_token"])["groups"] == USERS["ada"]["groups"]


def test_audience_fault_gives_id_tokens_of_the_other_client_until_cleared(clean_idp, page):
    clean_idp.set_faults(id_token_audience=clean_idp.other_client_id)
    tokens = login_tokens(page, clean_idp, "ada")
    claims = verified_claims(clean_idp, tokens["id_token"])  # signed by the provider all the same
    assert (claims["aud"], claims["sub"], claims["nonce"]) == (clean_idp.other_client_id, "ada", tokens["nonce"])
    assert userinfo(clean_idp, tokens["access_token"])["sub"] == "ada"
    clean_idp.set_faults()
    page.context.clear_cookies()  # log in again, not through the provider's session
    tokens = login_tokens(page, clean_idp, "ada")
    assert verified_claims(clean_idp, tokens["id_token"])["aud"] == clean_idp.client_id


def test_a_stopped_provider_refuses_connections_and_forgets_its_tokens(clean_idp, page):
    access_token = login_tokens(page, clean_idp, "ada")["access_token"]
    clean_idp.set_groups("ada", ["changed"])
    clean_idp.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(clean_idp.url("/.well-known/openid-configuration"), timeout=5)
    clean_idp.start()
    assert clean_idp.wait_ready()["issuer"] == clean_idp.issuer
    r = requests.get(clean_idp.url(USERINFO), headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
    page.context.clear_cookies()
    assert userinfo(clean_idp, login_tokens(page, clean_idp, "ada")["access_token"])["groups"] == ["lab", "bigjobs"]
