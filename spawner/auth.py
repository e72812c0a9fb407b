"""Login with no external identity provider: NativeAuthenticator, admin-approved.

One addition: a user an admin created through the REST API (``hubctl users
add``) is pre-approved, so they can sign up with their own password and log
in at once. Everyone else who signs up waits for an admin's approval.
"""

from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator


class PlatformAuthenticator(NativeAuthenticator):
    def get_authed_users(self):
        created_by_admin = {name for (name,) in self.db.query(orm.User.name)}
        return super().get_authed_users() | created_by_admin
