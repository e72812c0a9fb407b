"""Login with no external identity provider: NativeAuthenticator, admin-approved.

One addition: a user an admin created through the REST API (``hubctl users
add``) is pre-approved, so they can sign up with their own password and log
in at once. Everyone else who signs up waits for an admin's approval.
"""

from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import SignUpHandler

PRE_APPROVED = "Signed up. An admin had already approved you: you can log in now."


class PlatformSignUpHandler(SignUpHandler):
    def get_result_message(self, user, *args, **kwargs):
        alert, message = super().get_result_message(user, *args, **kwargs)
        if alert == "alert-info" and user is not None and user.is_authorized:
            return "alert-success", PRE_APPROVED  # not "sent to the admin"
        return alert, message


class PlatformAuthenticator(NativeAuthenticator):
    def get_authed_users(self):
        created_by_admin = {name for (name,) in self.db.query(orm.User.name)}
        return super().get_authed_users() | created_by_admin

    def get_handlers(self, app):
        handlers = dict(super().get_handlers(app))
        handlers[r"/signup"] = PlatformSignUpHandler
        return list(handlers.items())
