"""Sign-in through a real OpenID Provider (oidc-provider in a container, idp.py)
into a real hub, real user containers, real Chromium.

One deployment, PREFIX-oidc on PORT+800 (provider on PORT+850), starts with the
hub's own accounts: nat gets a password and writes a file in her workspace.
Then the hub is switched to the provider (the same data volume), and every test
here runs against that hub.
"""

import json
import re
import uuid
from types import SimpleNamespace

import pytest
import requests

from spawner.labels import LABEL_DEPLOYMENT, LABEL_GPUS, LABEL_USER
from spawner.profiles import DEFAULT_PROFILES
from tests.deployment import (
    PORT,
    PREFIX,
    ROOT,
    Deployment,
    api,
    invite_link,
    wait_running,
    wait_stopped,
)
from tests.hubclient import Browser

from .idp import TestProvider

pytestmark = pytest.mark.integration

HUB_PORT, IDP_PORT = PORT + 800, PORT + 850
HUB = f"http://127.0.0.1:{HUB_PORT}"
NAME = f"{PREFIX}-oidc"
CLIENT_ID = "gpuhub"
SECRET = uuid.uuid4().hex
PASSWORD = "correct horse battery"
# Login id -> what the provider says of them. groups: lab may sign in, bigjobs
# gets 2 GPUs (everyone else 1), admins are admins.
USERS = {
    "ada": {"groups": ["lab", "bigjobs"]},
    "bob": {"groups": ["lab"]},
    "carol": {"groups": ["lab", "admins"]},
    "eve": {"groups": ["visitors"]},
    "dana": {"preferred_username": "Dana.Smith", "groups": ["lab"]},
    "mallory": {"preferred_username": "../etc/passwd", "groups": ["lab"]},
    "nat": {"groups": ["lab"]},
}
NAT_FILE = "from-the-password-era.txt"


def provider_users() -> dict:
    return {
        login: {"password": PASSWORD, "preferred_username": login, "name": login.title(), **info}
        for login, info in USERS.items()
    }


def auth_setting(idp: TestProvider) -> dict:
    return {
        "provider": "oidc",
        "client_id": CLIENT_ID,
        "issuer": idp.issuer,
        "authorize_url": idp.authorize_url,
        "token_url": idp.token_url,
        "userdata_url": idp.userdata_url,
        "allowed_groups": ["lab"],
        "admin_groups": ["admins"],
        "login_service": "Test SSO",
    }


# A profile for the provider's group bigjobs only (profiles' allowed_groups).
BIG = {"display_name": "Big jobs", "slug": "big", "allowed_groups": ["bigjobs"], "spawner_override": {"gpus": 2}}


def oidc_hub(idp: TestProvider, secret: str = SECRET) -> Deployment:
    return Deployment(
        NAME,
        HUB_PORT,
        GPUHUB_AUTH=json.dumps(auth_setting(idp)),
        OAUTH_CLIENT_SECRET=secret,
        GPUHUB_GPU_QUOTA="1",
        GPUHUB_GPU_GROUP_QUOTAS="bigjobs=2",
        GPUHUB_PROFILES=json.dumps([*DEFAULT_PROFILES, BIG]),
    )


def form_action(page: requests.Response, step: str) -> str:
    match = re.search(rf'action="(/interaction/[\w-]+/{step})"', page.text)
    assert match, f"no {step} form at {page.url}: {page.status_code} {page.text[:400]}"
    return match.group(1)


def sign_in(login: str, password: str = PASSWORD) -> tuple[Browser, requests.Response]:
    """The whole authorization-code flow as a browser follows it: the hub's
    login button, the provider's login page, its consent page, back to the hub."""
    browser = Browser(HUB)
    page = browser.s.get(f"{HUB}/hub/oauth_login", timeout=30)
    idp = page.url.split("/interaction/")[0]
    page = browser.s.post(idp + form_action(page, "login"), data={"username": login, "password": password}, timeout=30)
    page = browser.s.post(idp + form_action(page, "consent"), data={"decision": "allow"}, timeout=60)
    return browser, page


def hub_user(browser: Browser) -> dict:
    """Who the hub thinks this browser is (its own token-less API view)."""
    r = browser.s.get(f"{HUB}/hub/api/user", timeout=30)
    assert r.ok, f"{r.status_code} {r.text[:300]}"
    return r.json()


@pytest.fixture(scope="module")
def oidc(docker_client):
    native = Deployment(NAME, HUB_PORT)
    native.down(docker_client)  # leftovers of an interrupted run
    idp = TestProvider(
        docker_client, f"{NAME}-idp", NAME, "idp", IDP_PORT, CLIENT_ID, SECRET,
        [f"{HUB}/hub/oauth_callback"], provider_users(), labels={LABEL_DEPLOYMENT: NAME},
    )  # fmt: skip
    idp.remove()
    hub = oidc_hub(idp)
    try:
        # The password era: nat claims her account and leaves a file in her workspace.
        native.up()
        browser = Browser(HUB)
        r = browser.accept_invite(invite_link(native.hubctl("users", "add", "nat").stdout), PASSWORD)
        assert r.ok and "is set" in r.text, r.text[:300]
        assert browser.login("nat", PASSWORD).ok
        assert browser.spawn({"profile": "cpu"}).status_code < 400
        browser.wait_server("nat")
        assert browser.contents_put("nat", NAT_FILE, "kept across the switch\n").status_code in (200, 201)
        admin = native.admin_api()
        api(admin, "DELETE", "/users/nat/server")
        wait_stopped(admin, "nat")
        # The switch: the same data volume, now signing in through the provider.
        hub.run("scripts/compose", "up", "-d")
        hub.wait_healthy()
        idp.start()
        idp.wait_ready()
        yield SimpleNamespace(hub=hub, idp=idp, admin=hub.admin_api())
    finally:
        (ROOT / ".build").mkdir(exist_ok=True)
        (ROOT / f".build/{NAME}-idp.log").write_text(idp.logs())
        idp.remove()
        hub.down(docker_client)


@pytest.fixture
def shots():
    path = ROOT / ".build/screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_sign_in_at_the_provider_consent_spawn_and_write(oidc, page, docker_client, shots):
    page.goto(f"{HUB}/hub/login")
    page.click("text=Sign in with Test SSO")
    page.wait_for_url(re.compile(rf"127.0.0.1:{IDP_PORT}/interaction/"))
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_selector("#allow")
    page.screenshot(path=shots / "oidc-consent.png")
    page.click("#allow")
    page.wait_for_url(re.compile(rf"127.0.0.1:{HUB_PORT}/hub/"))
    page.goto(f"{HUB}/hub/spawn")
    page.wait_for_selector("form#spawn_form input[name=profile]")
    page.check("#profile-item-gpu-1")
    page.click("form#spawn_form [type=submit]")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=180_000)
    page.wait_for_selector(".jp-Launcher", timeout=180_000)
    page.screenshot(path=shots / "oidc-lab.png")
    # A file saved through the server's own API, as JupyterLab saves one.
    xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf" and c["path"] == "/user/bob/")
    r = page.request.put(
        f"{HUB}/user/bob/api/contents/notes.txt",
        data=json.dumps({"type": "file", "format": "text", "content": "signed in through SSO\n"}),
        headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
    )
    assert r.status in (200, 201), r.text()
    [container] = _containers(docker_client, "bob")
    assert container.exec_run(["cat", "/home/jovyan/notes.txt"], user="1000").output == b"signed in through SSO\n"
    api(oidc.admin, "DELETE", "/users/bob/server")
    wait_stopped(oidc.admin, "bob")


def _containers(client, user: str):
    """The running containers of ``user`` in this deployment."""
    return client.containers.list(filters={"label": [f"{LABEL_DEPLOYMENT}={NAME}", f"{LABEL_USER}={user}"]})


def test_groups_carry_gpu_quotas_and_profiles(oidc, docker_client):
    for login in ("ada", "bob"):
        _, page = sign_in(login)
        assert page.ok and "/hub/" in page.url, f"{login}: {page.status_code} {page.url}"
    groups = {g["name"]: g["users"] for g in api(oidc.admin, "GET", "/groups").json()}
    assert "ada" in groups["bigjobs"] and "bob" not in groups["bigjobs"] and "bob" in groups["lab"]
    try:
        r = api(oidc.admin, "POST", "/users/bob/server", json={"profile": "big"})
        assert r.status_code == 403 and "only for members of bigjobs" in r.text, r.text
        r = api(oidc.admin, "POST", "/users/ada/server", json={"profile": "big"})
        assert r.status_code in (201, 202), r.text
        wait_running(oidc.admin, "ada")
        [container] = _containers(docker_client, "ada")
        assert len(container.labels[LABEL_GPUS].split(",")) == 2
        r = api(oidc.admin, "POST", "/users/bob/server", json={"profile": "gpu-2"})
        assert r.status_code == 400 and "limit is 1 GPU" in r.text, r.text
        assert not _containers(docker_client, "bob")
    finally:
        for user in ("ada", "bob"):
            api(oidc.admin, "DELETE", f"/users/{user}/server")
            wait_stopped(oidc.admin, user)


def test_admin_group_sees_the_admin_page_and_loses_it_with_the_group(oidc):
    browser, _ = sign_in("carol")
    assert hub_user(browser)["admin"] is True
    assert browser.s.get(f"{HUB}/hub/admin", timeout=30).status_code == 200
    oidc.idp.set_groups("carol", ["lab"])
    try:
        browser, _ = sign_in("carol")
        assert hub_user(browser)["admin"] is False
        assert browser.s.get(f"{HUB}/hub/admin", timeout=30).status_code == 403
    finally:
        oidc.idp.set_groups("carol", ["lab", "admins"])


def test_removed_from_bigjobs_gets_one_gpu_at_the_next_login(oidc, docker_client):
    sign_in("ada")
    oidc.idp.set_groups("ada", ["lab"])
    try:
        sign_in("ada")
        r = api(oidc.admin, "POST", "/users/ada/server", json={"profile": "gpu-2"})
        assert r.status_code == 400 and "limit is 1 GPU" in r.text, r.text
        assert not _containers(docker_client, "ada")
    finally:
        oidc.idp.set_groups("ada", ["lab", "bigjobs"])


def test_removed_from_every_allowed_group_is_signed_out_at_the_next_refresh(oidc):
    browser, _ = sign_in("bob")
    oidc.idp.set_groups("bob", ["alumni"])
    try:
        # refresh_pre_spawn: the provider is asked again before a server starts
        r = browser.s.post(f"{HUB}/hub/api/users/bob/server", json={}, headers=_xsrf_headers(browser), timeout=60)
        assert r.status_code == 403, r.text
        _, page = sign_in("bob")
        assert page.status_code == 403 and "not allowed on this hub" in page.text
    finally:
        oidc.idp.set_groups("bob", ["lab"])


def _xsrf_headers(browser: Browser) -> dict:
    return {"X-XSRFToken": browser.s.cookies.get("_xsrf", path="/hub/") or ""}


def test_a_user_in_no_allowed_group_gets_a_clear_403(oidc):
    _, page = sign_in("eve")
    assert page.status_code == 403
    assert "eve signed in at the identity provider but is not allowed on this hub" in page.text
    assert "Traceback" not in page.text


def test_provider_names_follow_the_platform_rule(oidc):
    browser, page = sign_in("dana")
    assert page.ok and hub_user(browser)["name"] == "dana.smith"
    _, page = sign_in("mallory")
    assert page.status_code == 403 and "cannot be a name here" in page.text
    names = [u["name"] for u in api(oidc.admin, "GET", "/users").json()]
    assert not [n for n in names if "/" in n or "etc" in n], names


def test_a_password_account_is_never_merged_silently_and_keeps_its_workspace_once_linked(oidc):
    _, page = sign_in("nat")
    assert page.status_code == 403 and "hubctl users link nat" in page.text
    out = oidc.hub.hubctl("users", "link", "nat").stdout
    assert "its hub password is removed" in out
    browser, page = sign_in("nat")
    assert page.ok and hub_user(browser)["name"] == "nat"
    try:
        assert browser.spawn({"profile": "cpu"}).status_code < 400
        browser.wait_server("nat")
        r = browser.contents_get("nat", NAT_FILE)
        assert r.ok and r.json()["content"] == "kept across the switch\n"
    finally:
        api(oidc.admin, "DELETE", "/users/nat/server")
        wait_stopped(oidc.admin, "nat")


def started_sign_in() -> tuple[Browser, str]:
    """A browser that pressed the hub's sign-in button: its state cookie is set; the state."""
    browser = Browser(HUB)
    start = browser.s.get(f"{HUB}/hub/oauth_login", allow_redirects=False, timeout=30)
    return browser, re.search(r"[?&]state=([^&]+)", start.headers["Location"]).group(1)


def test_tampered_state_or_code_is_a_400(oidc):
    browser, _ = started_sign_in()
    r = browser.s.get(f"{HUB}/hub/oauth_callback", params={"code": "x", "state": "tampered"}, timeout=30)
    assert r.status_code == 400 and "OAuth state mismatch" in r.text
    browser, state = started_sign_in()
    r = browser.s.get(f"{HUB}/hub/oauth_callback", params={"code": "forged-code", "state": state}, timeout=30)
    assert r.status_code == 400 and "refused this sign-in code (invalid_grant)" in r.text
    assert browser.s.get(f"{HUB}/hub/api/user", timeout=30).status_code == 403  # nobody signed in


def test_an_id_token_for_another_audience_is_refused(oidc):
    oidc.idp.set_faults(id_token_audience=oidc.idp.other_client_id)
    try:
        _, page = sign_in("bob")
    finally:
        oidc.idp.set_faults()
    assert page.status_code == 403 and "ID token is not for this hub" in page.text


def test_provider_down_a_clear_page_and_signed_in_users_keep_working(oidc):
    browser, _ = sign_in("bob")
    oidc.idp.stop()
    try:
        r = Browser(HUB).s.get(f"{HUB}/hub/oauth_login", timeout=30)
        assert r.status_code == 503 and "cannot be reached" in r.text
        assert browser.s.get(f"{HUB}/hub/home", timeout=30).status_code == 200
        assert hub_user(browser)["name"] == "bob"
    finally:
        oidc.idp.start()
        oidc.idp.wait_ready()


def test_a_wrong_client_secret_is_a_clear_error(oidc):
    """Last: the hub is restarted with a secret the provider does not know."""
    wrong = oidc_hub(oidc.idp, secret="not-the-secret")
    wrong.run("scripts/compose", "up", "-d")
    wrong.wait_healthy()
    _, page = sign_in("bob")
    assert page.status_code == 502 and "invalid_client" in page.text and "client secret" in page.text
