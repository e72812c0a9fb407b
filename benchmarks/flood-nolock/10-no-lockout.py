# "ours-nolock" of benchmarks/login_flood.py (HUB_CONFIG_D=benchmarks/flood-nolock):
# the platform with its failed-login lockout off, so that every attempt of
# the flood reaches bcrypt (in the authenticator's thread pool).
# ruff: noqa: F821 (c comes from jupyterhub_config.py)
c.PlatformAuthenticator.allowed_failed_logins = 0
