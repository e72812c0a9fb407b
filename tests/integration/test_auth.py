"""Login, sign-up, invitations, approval and admin tokens on the real hub (tests/deployment.py)."""

import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import requests

from ..deployment import BASE_URL, api, create_user, hub_container, hub_sql, hubctl, invite_link
from ..hubclient import Browser, xsrf_of

pytestmark = pytest.mark.integration

LONG = "é" * 40  # 80 bytes in UTF-8: more than bcrypt takes


def fresh_name(stem: str = "a") -> str:
    return f"{stem}{uuid.uuid4().hex[:8]}"


def signed_up(name: str) -> list:
    """[(is_authorized,)] of NAME's sign-up row; [] when there is none."""
    return hub_sql("SELECT is_authorized FROM users_info WHERE username = ?", name)


@pytest.fixture
def admin(deployment) -> Browser:
    browser = Browser(BASE_URL)
    r = browser.login("admin", deployment["admin_password"])
    assert "/hub/login" not in r.url, r.text[:300]
    return browser


# -- names ---------------------------------------------------------------------
def test_signup_refuses_a_name_outside_the_rule_and_says_the_rule(deployment):
    page = Browser(BASE_URL).signup("zoë.o'neil", uuid.uuid4().hex)
    assert "lower-case letters, digits" in page and "1 to 32 characters" in page
    assert signed_up("zoë.o'neil") == []


def test_signup_and_login_normalise_the_name(deployment, admin):
    name = fresh_name("ada.l-")
    password = uuid.uuid4().hex
    assert f"Signed up as {name}" in Browser(BASE_URL).signup(name.upper(), password)
    approve(admin, name)
    assert "/hub/login" not in Browser(BASE_URL).login(f"  {name.upper()}", password).url


# -- invitations, and what they replace ------------------------------------------
def test_signup_cannot_claim_an_account_an_admin_created(deployment):
    name = fresh_name()
    link = invite_link(hubctl("users", "add", name).stdout)
    stranger, owner = uuid.uuid4().hex, uuid.uuid4().hex
    assert "is taken" in Browser(BASE_URL).signup(name, stranger)
    assert "/hub/login" in Browser(BASE_URL).login(name, stranger).url
    assert Browser(BASE_URL).accept_invite(link, owner).status_code == 200
    assert "/hub/login" not in Browser(BASE_URL).login(name, owner).url
    assert "/hub/login" in Browser(BASE_URL).login(name, stranger).url


def test_signup_cannot_claim_an_admin_name(deployment):
    stranger = uuid.uuid4().hex
    assert "is taken" in Browser(BASE_URL).signup("admin", stranger)
    assert "/hub/login" in Browser(BASE_URL).login("admin", stranger).url


def test_an_invitation_link_sets_the_password_once(deployment):
    name = fresh_name()
    link = invite_link(hubctl("users", "add", name, "--expires-in", "2h").stdout)
    browser = Browser(BASE_URL)
    page = browser.s.get(BASE_URL + link, timeout=30)
    assert page.status_code == 200 and name in page.text and "works once" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"

    mismatch = browser.accept_invite(link, "first password 1", "second password 2")
    assert mismatch.status_code == 400 and "confirmation differ" in mismatch.text
    short = browser.accept_invite(link, "short")
    assert short.status_code == 400 and "at least 10 characters" in short.text
    password = uuid.uuid4().hex
    assert "is set" in browser.accept_invite(link, password).text
    assert "/hub/login" not in Browser(BASE_URL).login(name, password).url

    again = Browser(BASE_URL).s.get(BASE_URL + link, timeout=30)
    assert again.status_code == 410 and "already used" in again.text and 'name="password"' not in again.text
    assert "hubctl users invite" in again.text


def test_unknown_and_expired_invitations_get_a_clear_page(deployment):
    unknown = requests.get(f"{BASE_URL}/hub/invite?token=not-a-token", timeout=30)
    assert unknown.status_code == 404 and "not valid" in unknown.text
    name = fresh_name()
    link = invite_link(hubctl("users", "add", name, "--expires-in", "1").stdout)
    time.sleep(2)
    expired = requests.get(BASE_URL + link, timeout=30)
    assert expired.status_code == 410 and "expired" in expired.text


def test_a_new_invitation_replaces_the_old_link_and_resets_a_password(deployment):
    name, old = create_user()
    replaced = invite_link(hubctl("users", "invite", name).stdout)
    current = invite_link(hubctl("users", "invite", name).stdout)
    assert requests.get(BASE_URL + replaced, timeout=30).status_code == 404
    new = uuid.uuid4().hex
    assert "is set" in Browser(BASE_URL).accept_invite(current, new).text
    assert "/hub/login" not in Browser(BASE_URL).login(name, new).url
    assert "/hub/login" in Browser(BASE_URL).login(name, old).url


def test_hubctl_users_add_admin_makes_an_admin_who_claims_it_by_invitation(deployment, admin_api):
    name, password = create_user(None, "--admin")
    assert api(admin_api, "GET", f"/users/{name}").json()["admin"] is True
    browser = Browser(BASE_URL)
    browser.login(name, password)
    assert browser.s.get(f"{BASE_URL}/hub/authorize", timeout=30).status_code == 200


def test_only_admins_mint_invitations(deployment, admin_api):
    name, _ = create_user()
    other, _ = create_user()
    token = api(admin_api, "POST", f"/users/{name}/tokens", json={"expires_in": 600}).json()["token"]
    for target in (name, other):
        r = requests.post(
            f"{BASE_URL}/hub/api/invites/{target}", headers={"Authorization": f"token {token}"}, json={}, timeout=30
        )
        assert r.status_code == 403, r.text
    assert api(admin_api, "POST", "/invites/no-such-user", json={}).status_code == 404
    assert api(admin_api, "POST", f"/invites/{name}", json={"expires_in": -5}).status_code == 400
    assert api(admin_api, "POST", f"/invites/{name}", json={"surprise": 1}).status_code == 400


def test_the_hub_creates_the_first_admin_and_first_admin_prints_it(deployment):
    assert signed_up("admin") == [[1]]
    assert f"log in as 'admin' with password {deployment['admin_password']}" in hubctl("first-admin").stdout
    secret = "/srv/jupyterhub/data/secrets/initial_admin_password"
    hub = hub_container()
    assert hub.exec_run(["mv", secret, secret + ".aside"]).exit_code == 0
    try:
        out = hubctl("first-admin").stdout
        assert "is unknown" in out and "hubctl users invite admin" in out and "with password" not in out
    finally:
        assert hub.exec_run(["mv", secret + ".aside", secret]).exit_code == 0


# -- passwords -------------------------------------------------------------------
def test_passwords_over_72_bytes_get_a_clear_answer_not_a_500(deployment, admin):
    refused = Browser(BASE_URL).signup(fresh_name(), LONG)
    assert "at most 72 bytes" in refused

    name, password = create_user()
    failed = Browser(BASE_URL).login(name, LONG)
    assert failed.status_code == 403 and "Invalid username or password" in failed.text

    browser = Browser(BASE_URL)
    browser.login(name, password)
    new = browser.change_password(password, LONG)
    assert new.status_code == 400 and "at most 72 bytes" in new.text
    old = browser.change_password(LONG, uuid.uuid4().hex)
    assert old.status_code == 400 and "current password is incorrect" in old.text
    by_admin = admin.form(f"/hub/change-password/{name}", new_password=LONG, new_password_confirmation=LONG)
    assert by_admin.status_code == 400 and "at most 72 bytes" in by_admin.text
    assert "/hub/login" not in Browser(BASE_URL).login(name, password).url  # unchanged


def test_change_password_works_and_the_old_one_stops(deployment):
    name, password = create_user()
    browser = Browser(BASE_URL)
    browser.login(name, password)
    new = uuid.uuid4().hex
    assert "has been changed" in browser.change_password(password, new).text
    assert "/hub/login" not in Browser(BASE_URL).login(name, new).url
    assert "/hub/login" in Browser(BASE_URL).login(name, password).url


def test_failed_logins_lock_the_name_out(deployment):
    name, password = create_user()
    other, other_password = create_user()
    for _ in range(5):
        assert Browser(BASE_URL).login(name, "wrong password!").status_code == 403
    locked = Browser(BASE_URL).login(name, password)
    assert locked.status_code == 429 and "Too many failed logins" in locked.text and "/hub/login" in locked.url
    assert "/hub/login" not in Browser(BASE_URL).login(other, other_password).url


# -- approval, CSRF, cookies -----------------------------------------------------------
def approve(browser: Browser, name: str, action: str = "approve") -> requests.Response:
    return browser.form(f"/hub/authorize/{quote(name, safe='')}", "/hub/authorize", action=action)


def test_approve_and_discard_change_nothing_on_get(deployment, admin):
    name = fresh_name("p")
    Browser(BASE_URL).signup(name, uuid.uuid4().hex)
    for path in (f"/hub/authorize/{name}", f"/hub/discard/{name}"):
        assert admin.s.get(BASE_URL + path, timeout=30).status_code == 405
    assert signed_up(name) == [[0]]


def test_approve_and_discard_need_the_xsrf_token(deployment, admin):
    name = fresh_name("p")
    Browser(BASE_URL).signup(name, uuid.uuid4().hex)
    for path in (f"/hub/authorize/{name}", f"/hub/discard/{name}"):
        assert admin.s.post(BASE_URL + path, data={"action": "approve"}, timeout=30).status_code == 403
    assert signed_up(name) == [[0]]


def test_approve_unapprove_and_discard_by_form(deployment, admin):
    name, password = fresh_name("p"), uuid.uuid4().hex
    Browser(BASE_URL).signup(name, password)
    assert approve(admin, name).status_code == 200 and signed_up(name) == [[1]]
    assert "/hub/login" not in Browser(BASE_URL).login(name, password).url
    assert approve(admin, name, "unapprove").status_code == 200 and signed_up(name) == [[0]]
    assert approve(admin, name, "sideways").status_code == 400
    discard = admin.form(f"/hub/discard/{name}", "/hub/authorize")
    assert discard.status_code == 200 and signed_up(name) == []


def test_unknown_names_on_approve_and_discard_are_404(deployment, admin):
    assert approve(admin, "nobody-here").status_code == 404
    assert admin.form("/hub/discard/nobody-here", "/hub/authorize").status_code == 404


def test_hub_cookies_are_samesite_lax(deployment):
    name, password = create_user()
    session = requests.Session()
    page = session.get(f"{BASE_URL}/hub/login", timeout=30)
    login = session.post(
        f"{BASE_URL}/hub/login",
        data={"username": name, "password": password, "_xsrf": xsrf_of(page.text)},
        allow_redirects=False,
        timeout=30,
    )
    cookies = page.raw.headers.getlist("Set-Cookie") + login.raw.headers.getlist("Set-Cookie")
    by_name = {c.split("=", 1)[0]: c for c in cookies}
    assert {"_xsrf", "jupyterhub-hub-login", "jupyterhub-session-id"} <= set(by_name), cookies
    for cookie in by_name.values():
        assert "samesite=lax" in cookie.lower(), cookie


# -- hubctl token ------------------------------------------------------------------
def token_expiry(admin_api, *args: str) -> datetime | None:
    note = fresh_name("note-")
    hubctl("token", "--note", note, *args)
    tokens = api(admin_api, "GET", "/users/admin/tokens").json()["api_tokens"]
    [token] = [t for t in tokens if t["note"] == note]
    return token["expires_at"] and datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))


@pytest.mark.parametrize("args, lifetime", [((), timedelta(days=1)), (("--expires-in", "30m"), timedelta(minutes=30))])
def test_hubctl_token_expires(admin_api, args, lifetime):
    expires = token_expiry(admin_api, *args)
    assert abs(expires - (datetime.now(timezone.utc) + lifetime)) < timedelta(minutes=2)


def test_hubctl_token_never_expires_only_when_asked(admin_api):
    assert token_expiry(admin_api, "--expires-in", "never") is None
    bad = hubctl("token", "--expires-in", "soon", check=False)
    assert bad.returncode != 0 and "like 30m, 12h, 7d" in bad.stderr
