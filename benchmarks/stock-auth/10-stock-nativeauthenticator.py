# Baseline deployment of benchmarks/login_flood.py (HUB_CONFIG_D=benchmarks/stock-auth):
# NativeAuthenticator 1.3 as its documentation sets it up, after
# jupyterhub_config.py (whose NativeAuthenticator password rules apply to both).
# One change: JupyterHub's own /login handler, as NativeAuthenticator 1.3's
# answers 500 on JupyterHub 6 (it uses self.statsd, which JupyterHub 6 removed).
# Its authenticate() is untouched: bcrypt on the event loop, no lockout.
# ruff: noqa: F821 (c comes from jupyterhub_config.py)
from jupyterhub.handlers.login import LoginHandler
from nativeauthenticator import NativeAuthenticator


class StockNativeAuthenticator(NativeAuthenticator):
    def get_handlers(self, app):
        return [(path, LoginHandler if path == "/login" else handler) for path, handler in super().get_handlers(app)]


c.JupyterHub.authenticator_class = StockNativeAuthenticator
c.JupyterHub.template_paths = []  # NativeAuthenticator's pages, not the platform's
