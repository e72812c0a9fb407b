"""The admin's sign-up page (/hub/authorize) in a real Chromium: hostile names
stay text, and pages of another site cannot approve or discard anyone."""

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.deployment import BASE_URL, hub_sql
from tests.hubclient import Browser

pytestmark = pytest.mark.integration

EVIL_HOST = "evil.test"  # another site (not 127.0.0.1), resolved by Chromium alone


@pytest.fixture
def admin_page(playwright, tmp_path, deployment):
    """Chromium logged in as the admin; evil.test resolves to this machine."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "profile",
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL_HOST} 127.0.0.1", "--no-proxy-server"],
        headless=True,
    )
    context.set_default_timeout(30_000)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{BASE_URL}/hub/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", deployment["admin_password"])
    with page.expect_navigation():
        page.click("#login_submit")
    assert "/hub/login" not in page.url, page.inner_text("body")[:300]
    try:
        yield page
    finally:
        context.close()


def pending_signup() -> str:
    name = f"evil-{uuid.uuid4().hex[:8]}"
    assert "an admin must approve" in Browser(BASE_URL).signup(name, uuid.uuid4().hex)
    return name


def approved(name: str) -> list:
    return hub_sql("SELECT is_authorized FROM users_info WHERE username = ?", name)


def insert_pending(name: str) -> None:
    """A sign-up row as one made before the name rule existed."""
    hub_sql(
        "INSERT INTO users_info (username, password, is_authorized, login_email_sent, has_2fa) "
        "VALUES (?, x'00', 0, 0, 0)",
        name,
    )


def test_hostile_pending_names_render_as_text_and_approve_nobody(admin_page):
    evil = pending_signup()
    tag = uuid.uuid4().hex[:6]
    hostile = [
        # first in the table: NativeAuthenticator's unquoted id= made this an autofocus handler
        f"{tag}x\ttabindex=0\tautofocus\tonfocus=window.pwned=1;fetch('/hub/authorize/{evil}')",
        f'{tag}q"\ttabindex=0\tautofocus\tonfocus="window.pwned=2',
        f"{tag}<script>window.pwned=3</script>",
        # needs no focus: Bootstrap's page CSS defines @keyframes spinner-border
        f"{tag}y\tstyle=animation-name:spinner-border\tonanimationstart=window.pwned=5",
        f"{tag}a'/><img src=x onerror=window.pwned=4>",
        f"{tag}../../admin?x=1#",
    ]
    for name in hostile:
        insert_pending(name)

    admin_page.goto(f"{BASE_URL}/hub/authorize")
    admin_page.wait_for_selector("table")
    admin_page.bring_to_front()  # a focused window, as the admin's: focus handlers fire
    admin_page.wait_for_timeout(1000)  # time for any handler to fire
    assert approved(evil) == [[0]]
    assert admin_page.evaluate("window.pwned") is None
    shown = admin_page.locator("td.username").all_text_contents()
    assert set(hostile) <= set(shown), shown

    # The forms work for every name, hostile ones included.
    for name, button in [(evil, "Approve"), *((name, "Discard") for name in hostile)]:
        row = admin_page.locator("tr").filter(has=admin_page.get_by_text(name, exact=True))
        with admin_page.expect_navigation():
            row.get_by_role("button", name=button).click()
    assert approved(evil) == [[1]]
    assert [approved(name) for name in hostile] == [[]] * len(hostile)


ATTACK = {
    "/link": '<a id="go" href="{hub}/hub/authorize/{victim}">prize</a>',
    "/approve": '<form method="post" action="{hub}/hub/authorize/{victim}">'
    '<input name="action" value="approve"></form><script>document.forms[0].submit()</script>',
    "/discard": '<form method="post" action="{hub}/hub/discard/{victim}"></form>'
    "<script>document.forms[0].submit()</script>",
    "/img": '<img src="{hub}/hub/authorize/{victim}"><img src="{hub}/hub/discard/{victim}">',
}


@pytest.fixture
def evil_site():
    """Serves ATTACK pages from another site: http://evil.test:PORT/<page>?victim=NAME."""

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self):
            path, _, victim = self.path.partition("?victim=")
            body = ATTACK[path].format(hub=BASE_URL, victim=victim).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{EVIL_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_pages_of_another_site_cannot_approve_or_discard(admin_page, evil_site):
    victim = pending_signup()
    admin_page.goto(f"{evil_site}/img?victim={victim}")
    admin_page.wait_for_timeout(1000)
    admin_page.goto(f"{evil_site}/link?victim={victim}")
    with admin_page.expect_navigation():
        admin_page.click("#go")  # a top-level GET: SameSite=Lax sends the cookie, so GET must change nothing
    for attack in ("/approve", "/discard"):
        with admin_page.expect_navigation(url=lambda url: url.startswith(BASE_URL)):
            admin_page.goto(f"{evil_site}{attack}?victim={victim}")
        admin_page.wait_for_load_state()
    assert approved(victim) == [[0]]  # still there, still pending
