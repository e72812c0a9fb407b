"""A real browser (Debian's chromium, driven by Playwright) against the
integration-test deployment (fixtures: tests/deployment.py)."""

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")  # closed before async tests run: its loop would block theirs
def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright missing: run `scripts/provision --for-tests`")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run `scripts/provision --for-tests` (apt package chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture
def page(playwright, tmp_path):
    """A fresh Chromium profile (no cookies) per test, one tab."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1280, "height": 800},
    )  # fmt: skip
    context.set_default_timeout(30_000)
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()
