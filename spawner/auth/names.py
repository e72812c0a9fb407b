"""One rule for usernames, whatever signs people in: the hub's own accounts or
an identity provider. Names become container, volume and network names."""

import re
import unicodedata

from jupyterhub.auth import Authenticator
from traitlets import Integer, default

from ..messages import shown


class UsernameRule(Authenticator):
    """Names are NFKC-folded, lower-cased and match ``username_pattern`` in full."""

    username_max_length = Integer(
        32,
        config=True,
        help="""Longest username (the default username_pattern is built from it).

        e.g. c.PlatformAuthenticator.username_max_length = 24
        """,
    )

    @default("username_pattern")
    def _default_username_pattern(self):
        return rf"[a-z0-9][a-z0-9._-]{{0,{self.username_max_length - 1}}}"

    @default("username_regex")  # JupyterHub compiles the pattern only when it is set
    def _default_username_regex(self):
        return re.compile(self.username_pattern)

    def normalize_username(self, username):
        # NFKC first, so that look-alike forms (full-width, ligatures) fold too.
        return super().normalize_username(unicodedata.normalize("NFKC", username))

    def validate_username(self, username):
        # fullmatch: JupyterHub's own check is re.match, which a trailing "\n" passes.
        return super().validate_username(username) and bool(self.username_regex.fullmatch(username))

    @property
    def username_rule(self) -> str:
        if self.username_pattern != self._default_username_pattern():
            return f"a username must match the pattern {self.username_pattern}"
        return (
            f"a username is 1 to {self.username_max_length} characters: lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )

    def name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be stored as a username, or None."""
        normal = self.normalize_username(name)
        if normal != name and self.validate_username(normal):
            return f"{shown(name)} is not in normal form: use {normal!r}"
        if not self.validate_username(name):
            return f"{shown(name)} is not a valid username: {self.username_rule}"
        return None
