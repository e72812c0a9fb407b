"""Sign-in through the lab's identity provider: oauthenticator's classes with
the platform's username rule, reasons on every refusal, and no silent merge
with an account that signs in with a hub password."""

import json
from contextvars import ContextVar

import jwt
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import maybe_future
from nativeauthenticator.orm import UserInfo
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.gitlab import GitLabOAuthenticator
from oauthenticator.google import GoogleOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from sqlalchemy import inspect
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Unicode, default

from ..messages import shown
from .invites import Invite
from .names import UsernameRule

# How long the hub waits for the provider before telling the user it is down.
PROBE_TIMEOUT = 5


def native_account(db, name: str) -> UserInfo | None:
    """The hub-password record of ``name``, if the hub ever had native accounts."""
    if db is None or not inspect(db.bind).has_table(UserInfo.__tablename__):
        return None
    return UserInfo.find(db, name)


def provider_error(e: HTTPClientError) -> web.HTTPError:
    """A failed request to the provider, as the page the user sees."""
    if e.response is None:  # no answer at all
        return web.HTTPError(503, "The identity provider cannot be reached from the hub: try again later.")
    try:
        error = json.loads(e.response.body or b"{}").get("error", "")
    except (ValueError, AttributeError):
        error = ""
    if error == "invalid_client":
        return web.HTTPError(
            502,
            "The identity provider refused this hub's client credentials (invalid_client): "
            "an admin must check auth.client_id and the client secret.",
        )
    if error == "invalid_grant":
        return web.HTTPError(400, "The identity provider refused this sign-in code (invalid_grant): sign in again.")
    return web.HTTPError(502, f"The identity provider answered HTTP {e.code}{f' ({error})' if error else ''}.")


class ProviderLoginHandler(OAuthLoginHandler):
    """Redirects to the provider only when the hub can reach it: a clear page
    here beats the browser's own error page at the provider's address."""

    async def get(self):
        try:
            await AsyncHTTPClient().fetch(self.authenticator.token_url, method="GET", request_timeout=PROBE_TIMEOUT)
        except HTTPClientError as e:
            if e.response is None:
                raise provider_error(e) from None
            # any HTTP answer (the token endpoint refuses a GET) means it is up
        except OSError:
            raise web.HTTPError(503, "The identity provider cannot be reached from the hub: try again later.") from None
        super().get()


class ProviderLinkAPIHandler(APIHandler):
    """POST /hub/api/provider-links/NAME: NAME's hub password is dropped, so
    that the provider's NAME signs in as this account (its workspace, groups,
    servers). Until then that sign-in is refused, never merged silently."""

    @needs_scope("admin:users")
    async def post(self, user_name):
        if self.find_user(user_name) is None:
            raise web.HTTPError(404, f"No such user: {shown(user_name)}.")
        info = native_account(self.db, user_name)
        if info is not None:
            self.db.delete(info)
        if inspect(self.db.bind).has_table(Invite.__tablename__):
            Invite.forget_user(self.db, user_name)  # an unused invitation would set a password again
        self.db.commit()
        self.write(json.dumps({"name": user_name, "had_password": info is not None}))


# Why this sign-in was refused, for the page the callback answers with. The hooks
# keep oauthenticator's contract (return False / None), so the reason travels in a
# dict the callback handler creates: JupyterHub runs the hooks as tasks, which
# copy the context, but share this dict.
_REFUSAL: ContextVar[dict | None] = ContextVar("gpuhub_refusal", default=None)


class ProviderCallbackHandler(OAuthCallbackHandler):
    """oauthenticator's callback, with the reason of a refusal on its 403 page."""

    async def get(self):
        refusal = {}
        _REFUSAL.set(refusal)
        try:
            await super().get()
        except web.HTTPError as e:
            if e.status_code == 403 and refusal.get("why"):
                raise web.HTTPError(403, refusal["why"]) from None
            raise


class ProviderLogin(UsernameRule):
    """What every provider class of the platform adds to oauthenticator's."""

    login_handler = ProviderLoginHandler
    callback_handler = ProviderCallbackHandler

    def get_handlers(self, app):
        return [*super().get_handlers(app), (r"/api/provider-links/([^/]+)", ProviderLinkAPIHandler)]

    def refuse(self, name: str, why: str) -> None:
        """Record why ``name`` may not sign in: the callback's 403 page says it."""
        self.log.info("sign-in of %s refused: %s", shown(name), why)
        refusal = _REFUSAL.get()
        if refusal is not None:
            refusal["why"] = why

    async def authenticate(self, handler, data=None, **kwargs):
        try:
            model = await super().authenticate(handler, data, **kwargs)
        except HTTPClientError as e:
            raise provider_error(e) from None
        name = model["name"]
        if not self.validate_username(name):
            raw = self.user_info_to_username(model["auth_state"][self.user_auth_state_key])
            why = f"Your name at the identity provider, {shown(raw)}, cannot be a name here: {self.username_rule}."
            self.refuse(name, why)
            return None
        # handler.db: the hub's database (a handler without one has no native accounts to clash with)
        if native_account(getattr(handler, "db", None), name) is not None:
            why = (
                f"An account named {name} signs in with a password on this hub; it is not merged with your "
                f"identity at the provider. An admin links them with: hubctl users link {name}"
            )
            self.refuse(name, why)
            return None
        return model

    async def check_blocked_users(self, username, auth_model):
        if not await maybe_future(super().check_blocked_users(username, auth_model)):
            self.refuse(username, f"{username} may not sign in to this hub (blocked by an admin).")
            return False
        return True

    async def check_allowed(self, username, auth_model):
        if await maybe_future(super().check_allowed(username, auth_model)):
            return True
        why = (
            f"{username} signed in at the identity provider but is not allowed on this hub "
            "(in none of its allowed groups or users). Ask your lab's admin to add you."
        )
        self.refuse(username, why)
        return False

    async def refresh_user(self, user, handler=None, **kwargs):
        """A user the provider no longer allows must sign in again, and is then refused.

        An account that never signed in through the provider (one an admin made,
        e.g. for hubctl's tokens) has nothing to refresh: it stays as it is.
        """
        if self.enable_auth_state and not await user.get_auth_state():
            return True
        model = await super().refresh_user(user, handler, **kwargs)
        if isinstance(model, dict) and not (
            await self.check_blocked_users(user.name, model) and await self.check_allowed(user.name, model)
        ):
            self.log.info("%s is no longer allowed by the identity provider: sign-in needed", user.name)
            return False
        return model


class OIDCAuthenticator(ProviderLogin, GenericOAuthenticator):
    """Any OpenID Connect provider (Keycloak, Azure AD, Okta, CILogon...)."""

    @default("login_service")
    def _default_login_service(self):
        return "your lab's account"  # the button reads "Sign in with your lab's account"

    issuer = Unicode(
        "",
        config=True,
        help="""The provider's issuer: an ID token must name it (iss). Empty: not checked.

        e.g. c.OIDCAuthenticator.issuer = "https://sso.example.org/realms/lab"
        """,
    )

    async def token_to_user(self, token_info):
        self.check_id_token(token_info.get("id_token"))
        return await super().token_to_user(token_info)

    def check_id_token(self, id_token: str | None) -> None:
        """Refuse an ID token issued to another client or by another issuer, or expired.

        The token came straight from the token endpoint over the hub's own
        connection, so, as OIDC Core 3.1.3.7 allows, its signature is not checked.
        """
        if not id_token:  # a plain OAuth2 provider; an OIDC one returns it for the scope openid
            return
        try:
            jwt.decode(
                id_token,
                audience=self.client_id,
                issuer=self.issuer or None,
                # PyJWT turns every check off with the signature's: name each one
                options={
                    "verify_signature": False,
                    "verify_aud": True,
                    "verify_exp": True,
                    "verify_iss": bool(self.issuer),
                },
            )
        except jwt.InvalidTokenError as e:
            raise web.HTTPError(403, f"The identity provider's ID token is not for this hub: {e}.") from None


def github_teams(auth_state: dict) -> list[str]:
    """A GitHub user's teams as group names, "org:team" as allowed_organizations writes them."""
    return [f"{team['organization']['login']}:{team['slug']}" for team in auth_state.get("teams") or ()]


class GitHubAuthenticator(ProviderLogin, GitHubOAuthenticator):
    """GitHub (or GitHub Enterprise): organisations gate, teams are groups."""

    @default("scope")
    def _default_scope(self):
        return ["read:org"]  # private organisation and team membership

    @default("auth_state_groups_key")
    def _default_groups_key(self):
        return github_teams


class GitLabAuthenticator(ProviderLogin, GitLabOAuthenticator):
    """GitLab.com or a self-hosted GitLab: group membership gates."""


class GoogleAuthenticator(ProviderLogin, GoogleOAuthenticator):
    """Google: a Workspace domain gates."""


CLASSES = {
    "oidc": OIDCAuthenticator,
    "github": GitHubAuthenticator,
    "gitlab": GitLabAuthenticator,
    "google": GoogleAuthenticator,
}
