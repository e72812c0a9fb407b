"""The hub's sign-up, password, approval and invitation pages.

They replace NativeAuthenticator's handlers, which change state on GET
(approve, discard), hash on the event loop and answer 500 to a password
bcrypt cannot take. Login is JupyterHub's own handler (NativeAuthenticator
1.3's uses self.statsd, gone in JupyterHub 6) with our login.html.
Every name is checked by the authenticator's one rule.
"""

from urllib.parse import quote

from jupyterhub import orm
from jupyterhub.scopes import needs_scope
from nativeauthenticator import handlers as native
from nativeauthenticator.orm import UserInfo
from tornado import web

from ..messages import shown
from .invites import Invite


class SignUpHandler(native.SignUpHandler):
    """GET is NativeAuthenticator's form; POST creates a sign-up awaiting approval."""

    async def post(self):
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404)
        name = self.authenticator.normalize_username(self.get_body_argument("username", "", strip=True))
        problem = await self._sign_up(
            name,
            self.get_body_argument("signup_password", "", strip=False),
            self.get_body_argument("signup_password_confirmation", "", strip=False),
        )
        if problem:
            self.set_status(400)
            alert, message = "alert-danger", problem
        else:
            alert = "alert-info"
            message = f"Signed up as {name}: an admin must approve the account before you can log in."
        self.finish(
            await self.render_template("signup.html", result_message=message, alert=alert, tos=self.authenticator.tos)
        )

    def _taken(self, name: str) -> bool:
        # A hub user without a password was created by an admin: it is claimed
        # through its invitation, never by whoever signs up first.
        return orm.User.find(self.db, name) is not None or UserInfo.find(self.db, name) is not None

    async def _sign_up(self, name: str, password: str, confirmation: str) -> str | None:
        auth = self.authenticator
        taken = (
            f"The name {name} is taken. If an admin created this account for you, "
            "set your password with the invitation link they gave you."
        )
        problem = auth.name_problem(name)
        if problem:
            return problem
        if self._taken(name):
            return taken
        if password != confirmation:
            return "The password and its confirmation differ."
        problem = auth.password_problem(password)
        if problem:
            return problem
        hashed = await auth.hash_password(password)
        if self._taken(name):  # signed up by someone else while we hashed
            return taken
        self.db.add(UserInfo(username=name, password=hashed))
        self.db.commit()
        return None


async def _set_new_password(handler, info: UserInfo, name: str) -> str | None:
    """Set ``name``'s password from the form's new password and its confirmation; why not, or None."""
    auth = handler.authenticator
    new = handler.get_body_argument("new_password", "", strip=False)
    if new != handler.get_body_argument("new_password_confirmation", "", strip=False):
        return "The new password and its confirmation differ."
    problem = auth.password_problem(new)
    if problem:
        return problem
    info.password = await auth.hash_password(new)
    handler.db.commit()
    auth.password_set(name)
    return None


class ChangePasswordHandler(native.ChangePasswordHandler):
    @web.authenticated
    async def post(self):
        user = self.current_user
        info = self.authenticator.get_user(user.name)
        old = self.get_body_argument("old_password", "", strip=False)
        if info is None or not await self.authenticator.password_matches(old, info.password):
            problem = "Your current password is incorrect."
        else:
            problem = await _set_new_password(self, info, user.name)
        await self._answer("change-password.html", user.name, problem, "Your password has been changed.")

    async def _answer(self, template: str, name: str, problem: str | None, done: str) -> None:
        if problem:
            self.set_status(400)
        alert = "alert-danger" if problem else "alert-success"
        self.finish(await self.render_template(template, user_name=name, result_message=problem or done, alert=alert))


class ChangePasswordAdminHandler(native.ChangePasswordAdminHandler):
    _answer = ChangePasswordHandler._answer

    @needs_scope("admin:users")
    async def post(self, user_name):
        info = self.authenticator.get_user(user_name)
        if info is None:
            raise web.HTTPError(404)
        problem = await _set_new_password(self, info, user_name)
        await self._answer("change-password-admin.html", user_name, problem, f"The password of {user_name} is changed.")


class AuthorizationAreaHandler(native.LocalBase):
    """/hub/authorize: sign-ups, each with small POST forms (our template)."""

    @needs_scope("admin:users")
    async def get(self):
        signups = self.db.query(UserInfo).order_by(UserInfo.id).all()
        # Names as one URL path segment each: rows from before the name rule
        # may hold "/", "?", tabs or quotes.
        rows = [(info, quote(info.username, safe="")) for info in signups]
        self.finish(await self.render_template("authorization-area.html", rows=rows))


def _signup_or_404(db, name: str) -> UserInfo:
    # As stored, not normalised: rows from before the name rule stay reachable.
    info = UserInfo.find(db, name)
    if info is None:
        raise web.HTTPError(404, f"No sign-up named {shown(name)}.")
    return info


class ToggleAuthorizationHandler(native.LocalBase):
    """POST /hub/authorize/NAME action=approve|unapprove (GET: 405, changes nothing)."""

    @needs_scope("admin:users")
    async def post(self, name):
        info = _signup_or_404(self.db, name)
        action = self.get_body_argument("action", "")
        if action not in ("approve", "unapprove"):
            raise web.HTTPError(400, "action must be 'approve' or 'unapprove'.")
        info.is_authorized = action == "approve"
        self.db.commit()
        self.redirect(self.hub.base_url + "authorize")


class DiscardHandler(native.LocalBase):
    """POST /hub/discard/NAME: drop a pending sign-up (GET: 405, changes nothing)."""

    @needs_scope("admin:users")
    async def post(self, name):
        info = _signup_or_404(self.db, name)
        if info.is_authorized:
            raise web.HTTPError(409, f"{shown(name)} is approved: unapprove before discarding.")
        # Only the sign-up goes; a hub account of that name (an admin made it) stays.
        self.db.delete(info)
        self.db.commit()
        self.redirect(self.hub.base_url + "authorize")


class InviteHandler(native.LocalBase):
    """/hub/invite?token=T: the holder of an invitation sets the account's password.

    The token travels as a query parameter named "token", which JupyterHub's
    request log scrubs; the form posts it back in the body.
    """

    def _invite(self, token: str) -> tuple[Invite | None, str | None]:
        invite = Invite.find(self.db, token)
        if invite is None:
            self.set_status(404)
            return None, "This invitation link is not valid: mistyped, or replaced by a newer one."
        problem = invite.problem()
        if problem:
            self.set_status(410)
        return invite, problem

    async def _page(self, **ns) -> None:
        self.set_header("Referrer-Policy", "no-referrer")  # the token is in this page's URL
        self.finish(await self.render_template("invite.html", **ns))

    async def get(self):
        token = self.get_query_argument("token", "")
        invite, problem = self._invite(token)
        await self._page(invite=invite, token=token, problem=problem, done=False)

    async def post(self):
        token = self.get_body_argument("token", "")
        invite, problem = self._invite(token)
        if problem is None:
            password = self.get_body_argument("password", "", strip=False)
            if password != self.get_body_argument("password_confirmation", "", strip=False):
                problem = "The password and its confirmation differ."
            else:
                problem = await self.authenticator.redeem_invite(invite, password)
            if problem:
                self.set_status(400)
        await self._page(invite=invite, token=token, problem=problem, done=problem is None)
