"""A researcher's day through a real SSH tunnel (README "From your laptop"):
Chromium reaches the hub only through `ssh -N -L PORT+720:127.0.0.1:PORT`
via the OpenSSH gateway, on a local port that is not the hub's own. Sign in,
pick a profile, watch the spawn's progress, run a notebook cell and a terminal
command (both websockets through the tunnel), survive a dropped tunnel, stop
and start again from the hub page, find the notebook. Screenshots go to
.build/screenshots/ssh-*.png."""

import re
import time
from urllib.parse import urlsplit

import pytest

from tests.deployment import PORT, ROOT, api, create_user, user_containers, wait_stopped

pytestmark = pytest.mark.integration

LAB_TIMEOUT_MS = 180_000


@pytest.fixture
def researcher(tunnel, admin_api):
    name, password = create_user()
    yield name, password
    api(admin_api, "DELETE", f"/users/{name}/server")
    wait_stopped(admin_api, name, timeout=120)


@pytest.fixture
def shots():
    path = ROOT / ".build/screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Keeps what the spawn-pending page shows in #progress-message (the page
# navigates away when the server is ready, so it is read back afterwards).
RECORD_PROGRESS = """
document.addEventListener("DOMContentLoaded", () => {
  const message = document.querySelector("#progress-message");
  if (!message) return;
  new MutationObserver(() => {
    const shown = JSON.parse(sessionStorage.getItem("progress") || "[]");
    shown.push(message.textContent.trim());
    sessionStorage.setItem("progress", JSON.stringify(shown));
  }).observe(message, {childList: true, characterData: true, subtree: true});
});
"""


def spawn_from_form(page, base: str) -> list[str]:
    """Submit the spawn page's CPU profile, wait for JupyterLab; the progress messages the page showed."""
    page.wait_for_selector("form#spawn_form input[name=profile]")
    page.check("#profile-item-cpu")
    page.evaluate("sessionStorage.removeItem('progress')")
    page.click("form#spawn_form [type=submit]")
    page.wait_for_url(re.compile(r"/user/[^/]+/lab"), timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector("#jp-main-dock-panel", timeout=LAB_TIMEOUT_MS)  # the Lab shell (its layout restored)
    assert page.url.startswith(base)
    return page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")


# Opens a websocket from the page's JavaScript; what came of it: the first bytes received, or why not.
OPEN_WEBSOCKET = """
url => new Promise(resolve => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onmessage = e => { resolve("received " + new TextDecoder().decode(e.data).slice(0, 8)); ws.close(); };
  ws.onerror = () => resolve("error");
  ws.onclose = () => resolve("closed");
  setTimeout(() => resolve("timeout"), 20000);
})
"""


def run_cell(page, source: str, expect: str) -> None:
    """Type ``source`` into the notebook's last cell, run it, wait for ``expect`` in an output."""
    cell = page.locator(".jp-Notebook .jp-Cell").last
    cell.locator(".cm-content").click()
    page.keyboard.type(source)
    page.keyboard.press("Shift+Enter")
    try:
        page.locator(".jp-OutputArea-output", has_text=expect).first.wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=ROOT / ".build/screenshots/ssh-failed-cell.png")
        raise


def dismiss_dialogs(page) -> None:
    """JupyterLab's "server connection" dialog, shown while the tunnel was down."""
    for button in page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").all():
        button.click()


def test_a_researchers_day_through_the_tunnel(page, tunnel, researcher, docker_client, shots):
    name, password = researcher
    base = tunnel.base_url
    seen, redirects = [], []
    page.on("request", lambda req: seen.append(req.url))
    page.on(
        "response",
        lambda res: redirects.append(res.headers.get("location", "")) if res.status in (301, 302, 303, 307) else None,
    )

    page.goto(f"{base}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login_submit")
    assert "/hub/login" not in page.url and page.url.startswith(base), page.url

    page.goto(f"{base}/hub/spawn")
    page.wait_for_selector("form#spawn_form input[name=profile]")
    page.screenshot(path=shots / "ssh-spawn-page.png", full_page=True)
    page.add_init_script(RECORD_PROGRESS)
    shown = spawn_from_form(page, base)
    assert any("ready" in message.lower() for message in shown), shown

    # The SSH websocket answers a page of the hub's own origin (sshd's banner), never another site's page.
    sshd = base.replace("http://", "ws://") + f"/user/{name}/sshd/"
    assert page.evaluate(OPEN_WEBSOCKET, sshd) == "received SSH-2.0-"
    attacker = page.context.new_page()
    attacker.route("http://attacker.test/", lambda route: route.fulfill(content_type="text/html", body="<p>hi</p>"))
    attacker.goto("http://attacker.test/")
    assert attacker.evaluate(OPEN_WEBSOCKET, sshd) == "error"
    attacker.close()

    # A notebook on the named kernel (the stand-in's python3), a cell run: the kernel websocket.
    page.locator('.jp-LauncherCard[data-category="Notebook"]', has_text="Python 3").first.click(timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    run_cell(page, "x = 41; print('through-the-tunnel', x + 1)", "through-the-tunnel 42")
    page.keyboard.press("Control+s")  # the first save asks for a name
    page.locator(".jp-Dialog input[type=text]").fill("journey.ipynb")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.locator(".lm-TabBar-tab", has_text="journey.ipynb").first.wait_for()
    page.screenshot(path=shots / "ssh-lab-output.png")

    # A terminal: its websocket too.
    page.click('[data-command="launcher:create"]')
    page.locator('.jp-LauncherCard[data-category="Other"]', has_text="Terminal").first.click()
    page.wait_for_selector(".jp-Terminal .xterm-helper-textarea", timeout=60_000)
    page.locator(".jp-Terminal").last.click()
    page.keyboard.type("echo term-$((6*7)) > ~/from-terminal.txt\n")
    [container] = user_containers(docker_client, name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, out = container.exec_run(["cat", "/home/jovyan/from-terminal.txt"], user="1000")
        if code == 0:
            break
        time.sleep(0.5)
    assert out.decode().strip() == "term-42"

    # The tunnel drops and comes back: the same kernel answers (x is still 41), nothing is lost.
    page.locator(".lm-TabBar-tab", has_text="journey.ipynb").first.click()
    tunnel.close()
    time.sleep(3)
    tunnel.open()
    dismiss_dialogs(page)
    run_cell(page, "print('after-reconnect', x + 1)", "after-reconnect 42")
    page.keyboard.press("Control+s")
    page.locator(".lm-TabBar-tab.jp-mod-dirty", has_text="journey.ipynb").wait_for(state="detached")
    assert page.locator(".jp-OutputArea-output", has_text="through-the-tunnel 42").count() == 1

    # Stop from the hub's home page, start again: the notebook is there with its outputs.
    page.goto(f"{base}/hub/home", wait_until="networkidle")  # its buttons work once home.js has loaded
    with page.expect_response(
        lambda r: r.request.method == "DELETE" and urlsplit(r.url).path.endswith(f"/users/{name}/server")
    ):
        page.click("#stop")
    page.locator("#stop").wait_for(state="hidden", timeout=120_000)
    page.locator("#start", has_text="Start My Server").wait_for()
    page.screenshot(path=shots / "ssh-hub-home.png", full_page=True)
    page.click("#start")
    assert spawn_from_form(page, base)
    page.goto(f"{base}/user/{name}/lab/tree/journey.ipynb")
    page.locator(".jp-OutputArea-output", has_text="after-reconnect 42").first.wait_for(timeout=60_000)
    assert page.locator(".jp-OutputArea-output", has_text="through-the-tunnel 42").count() == 1

    # Nothing assumed the hub's own host or port: every request and redirect stayed on the tunnel's address.
    assert seen and all(url.startswith(base) for url in seen), sorted({u for u in seen if not u.startswith(base)})
    hub_port = f":{PORT}"
    assert not [loc for loc in redirects if hub_port in loc or (loc.startswith("http") and not loc.startswith(base))]
