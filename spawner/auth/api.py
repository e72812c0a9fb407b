"""REST additions: mint an invitation; create a user only under a valid name."""

import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.apihandlers.users import UserAPIHandler as HubUserAPIHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat


class InviteAPIHandler(APIHandler):
    """POST /hub/api/invites/NAME {"expires_in": seconds} -> a one-time link.

    Any earlier unused link of NAME stops working. Used by ``hubctl users add``
    and ``hubctl users invite``.
    """

    @needs_scope("admin:users")
    async def post(self, user_name):
        body = self.get_json_body() or {}
        if not isinstance(body, dict) or set(body) - {"expires_in"}:
            raise web.HTTPError(400, 'The body is {"expires_in": seconds} or empty.')
        expires_in = body.get("expires_in", self.authenticator.invite_expires_in)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise web.HTTPError(400, "expires_in is a positive number of seconds.")
        if self.find_user(user_name) is None:
            raise web.HTTPError(404, "No such user: create it first (POST /hub/api/users/NAME).")
        token, invite = self.authenticator.mint_invite(user_name, expires_in)
        path = url_concat(url_path_join(self.hub.base_url, "invite"), {"token": token})
        public = self.settings.get("public_url")
        self.set_status(201)
        self.write(
            json.dumps(
                {
                    "name": user_name,
                    # absolute only where the hub knows its public address (JupyterHub.public_url)
                    "url": f"{public.scheme}://{public.netloc}{path}" if public else path,
                    "expires_at": invite.expires.isoformat() + "Z",
                }
            )
        )


class UserAPIHandler(HubUserAPIHandler):
    """JupyterHub's POST /hub/api/users/NAME stores NAME as given; refuse,
    with the rule, a name the authenticator would not accept at login."""

    @needs_scope("admin:users")
    async def post(self, user_name):
        problem = self.authenticator.name_problem(user_name)
        if problem:
            raise web.HTTPError(400, problem)
        return await super().post(user_name)
