"""Login with no external identity provider: NativeAuthenticator, hardened.

Self sign-up waits for an admin's approval; an account an admin creates is
claimed through a one-time invitation link; names follow one rule; failed
logins lock a name out for a while; bcrypt runs off the event loop.
"""

import os

from .authenticator import PlatformAuthenticator

# Our page templates, searched before NativeAuthenticator's (c.JupyterHub.template_paths).
TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")

__all__ = ["TEMPLATES", "PlatformAuthenticator"]
