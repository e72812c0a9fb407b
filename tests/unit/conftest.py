import pytest
from tornado.httpserver import HTTPServer


@pytest.fixture(autouse=True)
def _keep_httpserver_defaults():
    """spawner.configure.apply sets a process-wide HTTPServer default: undo it after each test."""
    saved = HTTPServer._save_configuration()
    yield
    HTTPServer._restore_configuration(saved)
