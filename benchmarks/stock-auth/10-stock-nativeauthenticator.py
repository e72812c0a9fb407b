# Baseline deployment of benchmarks/login_flood.py (HUB_CONFIG_D=benchmarks/stock-auth):
# NativeAuthenticator 1.3 as its documentation sets it up (its own handlers and
# pages), after jupyterhub_config.py, whose NativeAuthenticator password rules
# apply to both: bcrypt on the event loop, no lockout.
# ruff: noqa: F821 (c comes from jupyterhub_config.py)
c.JupyterHub.authenticator_class = "nativeauthenticator.NativeAuthenticator"
c.JupyterHub.template_paths = []  # NativeAuthenticator's pages, not the platform's
