"""The platform through a real browser: login page, spawn form, JupyterLab, admin page."""

import re
import uuid

import pytest

from spawner.labels import LABEL_GPUS, LABEL_USER
from tests.deployment import BASE_URL, ROOT, api, container_env, create_user, user_containers, wait_stopped

pytestmark = pytest.mark.integration

LAB_TIMEOUT_MS = 180_000


@pytest.fixture
def shots():
    """Where screenshots go (.build/ is ignored by git)."""
    path = ROOT / ".build/screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def researcher(deployment, admin_api):
    """(name, password) of a user an admin invited, invitation accepted; their server stopped afterwards."""
    name, password = create_user(f"web{uuid.uuid4().hex[:8]}")
    yield name, password
    api(admin_api, "DELETE", f"/users/{name}/server")  # returns the GPUs to the pool
    wait_stopped(admin_api, name, timeout=120)


def log_in(page, name: str, password: str, base_url: str = BASE_URL) -> None:
    page.goto(f"{base_url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login_submit")
    body = page.inner_text("body")[:500]
    assert "/hub/login" not in page.url, f"login of {name} failed: {page.url}\n{body}"


def open_spawn_form(page) -> dict[str, str]:
    """Go to /hub/spawn; return {slug: label text} of the profiles offered."""
    page.goto(f"{BASE_URL}/hub/spawn")
    page.wait_for_selector("form#spawn_form input[name=profile]")
    radios = page.locator("form#spawn_form input[name=profile]")
    slugs = [radios.nth(i).get_attribute("value") for i in range(radios.count())]
    return {slug: page.inner_text(f"label[for='profile-item-{slug}']") for slug in slugs}


def test_researcher_starts_one_gpu_and_lands_in_lab(page, researcher, docker_client, shots):
    name, password = researcher
    log_in(page, name, password)
    offered = open_spawn_form(page)
    assert list(offered) == ["cpu", "gpu-1", "gpu-2"], offered  # no admin-only profile
    assert "All GPUs" not in page.inner_text("form#spawn_form")
    assert page.is_checked("#profile-item-cpu")  # the default profile
    page.check("#profile-item-gpu-1")
    assert "1 GPU" in offered["gpu-1"]
    page.screenshot(path=shots / "spawn-form.png", full_page=True)

    page.click("form#spawn_form [type=submit]")
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector("#jp-main-dock-panel", timeout=LAB_TIMEOUT_MS)  # the Lab shell
    page.wait_for_selector(".jp-Launcher", timeout=LAB_TIMEOUT_MS)  # and its launcher tab
    page.screenshot(path=shots / "lab.png")

    [container] = user_containers(docker_client, name)
    labels = container.labels
    env = container_env(container)
    gpus = labels[LABEL_GPUS].split(",")
    assert len(gpus) == 1 and gpus[0] in {"0", "1", "2", "3"}, labels
    assert env["NVIDIA_VISIBLE_DEVICES"] == gpus[0]
    assert container.status == "running"


def test_admin_sees_all_gpus_profile_and_user_list(page, deployment, researcher, shots):
    other, _ = researcher
    log_in(page, "admin", deployment["admin_password"])
    offered = open_spawn_form(page)
    assert "gpu-all" in offered and "All GPUs" in offered["gpu-all"], offered
    assert {"cpu", "gpu-1", "gpu-2"} <= set(offered)

    page.goto(f"{BASE_URL}/hub/admin")
    for user in ("admin", other):  # rows of the React admin app's user table (paged: search first)
        page.fill("input[name=user_search]", user)
        page.get_by_test_id(f"user-name-div-{user}").wait_for()
    page.screenshot(path=shots / "admin.png")


def test_tampered_profile_is_refused_with_a_clear_error(page, researcher, docker_client, shots):
    name, password = researcher
    bad = f"evil-{uuid.uuid4().hex[:6]}"
    log_in(page, name, password)
    open_spawn_form(page)
    page.evaluate(
        "bad => { const radio = document.querySelector('#profile-item-gpu-1');"
        " radio.value = bad; radio.checked = true; }",
        bad,
    )
    with page.expect_navigation() as answer:
        page.click("form#spawn_form [type=submit]")
    assert answer.value.status == 400  # the hub re-renders the form with the error
    error = page.locator(".spawn-error-msg")
    error.wait_for()
    message = error.inner_text()
    page.screenshot(path=shots / "spawn-error.png", full_page=True)
    assert bad in message and "Unknown profile" in message, message
    assert "/lab" not in page.url
    assert user_containers(docker_client, name) == []
    assert docker_client.volumes.list(filters={"label": f"{LABEL_USER}={name}"}) == []
