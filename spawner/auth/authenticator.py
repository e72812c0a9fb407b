"""PlatformAuthenticator: NativeAuthenticator with one name rule, invitations,
a failed-login lockout, bcrypt off the event loop and a first admin made at start."""

import asyncio
import contextlib
import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from jupyterhub.utils import utcnow
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from tornado import web
from traitlets import Any, Integer, TraitError, Unicode, default, validate

from ..hubsecrets import store_secret
from . import api, handlers, passwords
from .invites import Invite
from .names import UsernameRule


class PlatformAuthenticator(UsernameRule, NativeAuthenticator):
    """Sign-up waits for an admin's approval; accounts an admin creates are
    claimed only through a one-time invitation (``hubctl users add``)."""

    invite_expires_in = Integer(
        7 * 24 * 3600,
        config=True,
        help="""Seconds an invitation link stays valid unless the admin asks otherwise.

        e.g. c.PlatformAuthenticator.invite_expires_in = 3 * 24 * 3600
        """,
    )
    initial_admin = Unicode(
        "",
        config=True,
        help="""Admin the hub creates at start-up, before it serves a request, with a
        random password written (mode 600) to initial_admin_password_file. Empty: none.

        e.g. c.PlatformAuthenticator.initial_admin = "admin"
        """,
    )

    @validate("initial_admin")
    def _normal_initial_admin(self, proposal):
        # as JupyterHub stores admin_users: normalised
        return self.normalize_username(proposal.value) if proposal.value else ""

    initial_admin_password_file = Unicode(
        "",
        config=True,
        help="""Where the initial admin's generated password is kept until it is changed.

        e.g. c.PlatformAuthenticator.initial_admin_password_file = "/srv/jupyterhub/data/secrets/initial_admin_password"
        """,
    )
    password_hash_threads = Integer(
        config=True,
        help="""Threads that run bcrypt (about 0.3 s of CPU per login, sign-up or change).
        Bounded so that a flood of logins leaves CPU to the hub and to spawns.
        Default: half the CPUs, at least one.

        e.g. c.PlatformAuthenticator.password_hash_threads = 2
        """,
    )

    @default("password_hash_threads")
    def _default_password_hash_threads(self):
        return max(1, (os.cpu_count() or 2) // 2)

    _hash_pool = Any()

    @default("_hash_pool")
    def _default_hash_pool(self):
        return ThreadPoolExecutor(self.password_hash_threads, thread_name_prefix="bcrypt")

    @default("allowed_failed_logins")
    def _default_allowed_failed_logins(self):
        return 5

    @default("seconds_before_next_try")
    def _default_seconds_before_next_try(self):
        return 300

    @validate("open_signup", "ask_email_on_signup", "allow_2fa", "allow_self_approval_for", "recaptcha_key")
    def _refuse_unsupported(self, proposal):
        # This platform's sign-up and login pages replace NativeAuthenticator's
        # and implement none of these: refuse rather than ignore them.
        if proposal.value:
            raise TraitError(f"PlatformAuthenticator does not support NativeAuthenticator.{proposal.trait.name}")
        return proposal.value

    # -- passwords -----------------------------------------------------------
    def password_problem(self, password: str) -> str | None:
        size = len(password.encode("utf-8"))
        if size > passwords.MAX_BYTES:
            return f"A password is at most {passwords.MAX_BYTES} bytes (UTF-8); this one has {size}."
        if len(password) < self.minimum_password_length:
            return f"A password has at least {self.minimum_password_length} characters."
        if self.check_common_password and self.is_password_common(password):
            return "This password is too common: choose another."
        return None

    async def hash_password(self, password: str) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._hash_pool, passwords.hash_password, password)

    async def password_matches(self, password: str, stored: bytes) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._hash_pool, passwords.matches, password, stored)

    def password_set(self, name: str) -> None:
        """After a password change: unlock the name; the initial one is no longer true."""
        self.successful_login(name)
        if name == self.initial_admin and self.initial_admin_password_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.initial_admin_password_file)

    # -- login ---------------------------------------------------------------
    def lockout_left(self, name: str) -> int:
        """Seconds until ``name`` may try again (0: not locked out). NativeAuthenticator's
        is_blocked compares timedelta.seconds, which wraps after a day."""
        attempts = self.login_attempts.get(name)
        if not self.allowed_failed_logins or not attempts or attempts["count"] < self.allowed_failed_logins:
            return 0
        left = self.seconds_before_next_try - (datetime.now() - attempts["time"]).total_seconds()
        return math.ceil(left) if left > 0 else 0

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        if not self.validate_username(name):
            return None
        info = self.get_user(name)
        if info is None:
            return None
        left = self.lockout_left(name)
        if left:  # before bcrypt: a locked-out name costs the hub nothing
            raise web.HTTPError(429, f"Too many failed logins for {name}: try again in {left} seconds.")
        stored = info.password  # read here: the session is never touched from the worker thread
        if not await self.password_matches(data.get("password", ""), stored):
            self.add_login_attempt(name)
            return None
        if not info.is_authorized:
            raise web.HTTPError(403, f"{name} has signed up but is not approved by an admin yet.")
        self.successful_login(name)
        return name

    # -- users ---------------------------------------------------------------
    async def add_user(self, user):
        problem = self.name_problem(user.name)
        if problem:
            raise ValueError(problem)
        super().add_user(user)
        if user.name == self.initial_admin:
            await self._ensure_initial_admin()

    async def _ensure_initial_admin(self):
        if not self.initial_admin_password_file or self.get_user(self.initial_admin) is not None:
            return
        password = secrets.token_urlsafe(18)
        hashed = await self.hash_password(password)
        # The file first: never an account whose password nobody has.
        store_secret(self.initial_admin_password_file, password)
        self.db.add(UserInfo(username=self.initial_admin, password=hashed, is_authorized=True))
        self.db.commit()
        self.log.info("Created admin %r; its password is in %s", self.initial_admin, self.initial_admin_password_file)

    def delete_user(self, user):
        Invite.forget_user(self.db, user.name)
        return super().delete_user(user)

    def add_new_table(self):
        super().add_new_table()
        Invite.__table__.create(self.db.bind, checkfirst=True)

    # -- invitations -----------------------------------------------------------
    def mint_invite(self, name: str, expires_in: int) -> tuple[str, Invite]:
        info = UserInfo.find(self.db, name)
        if info is not None and not info.is_authorized:
            # A pending sign-up under this name is someone else's claim on it:
            # only the holder of the link sets this account's password.
            self.db.delete(info)
        return Invite.mint(self.db, name, expires_in)

    async def redeem_invite(self, invite: Invite, password: str) -> str | None:
        """Set the invited user's password; return why not, or None."""
        problem = invite.problem() or self.password_problem(password)
        if problem:
            return problem
        hashed = await self.hash_password(password)
        problem = invite.problem()  # the same link may have been used meanwhile
        if problem:
            return problem
        info = UserInfo.find(self.db, invite.username)
        if info is None:
            self.db.add(UserInfo(username=invite.username, password=hashed, is_authorized=True))
        else:
            info.password, info.is_authorized = hashed, True
        invite.used = utcnow(with_tz=False)
        self.db.commit()
        self.password_set(invite.username)
        return None

    def get_handlers(self, app):
        # /login: JupyterHub's own handler; the errors authenticate() raises
        # (lockout, not yet approved) show on its form.
        return [
            (r"/signup", handlers.SignUpHandler),
            (r"/authorize", handlers.AuthorizationAreaHandler),
            (r"/authorize/([^/]*)", handlers.ToggleAuthorizationHandler),
            (r"/discard/([^/]*)", handlers.DiscardHandler),
            (r"/change-password", handlers.ChangePasswordHandler),
            (r"/change-password/([^/]+)", handlers.ChangePasswordAdminHandler),
            (r"/invite", handlers.InviteHandler),
            (r"/api/invites/([^/]+)", api.InviteAPIHandler),
            # ahead of JupyterHub's own route: refuse a bad name with the rule, not a bare 400
            (r"/api/users/([^/]+)", api.UserAPIHandler),
        ]
