# The project's Chromium fixtures (a fresh profile per test), for the provider's own tests.
from tests.browser.conftest import page, playwright  # noqa: F401
