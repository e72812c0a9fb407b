# The real test deployment's fixtures, shared by tests/integration and tests/browser.
pytest_plugins = ["tests.deployment"]
