"""spawner/auth/oauth.py without a provider: what each failure becomes, and
the ID-token check. The whole flow runs against a real provider in tests/oidc."""

import io
import json
import time

import jwt
import pytest
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from traitlets.config import Config

from spawner.auth.oauth import OIDCAuthenticator, provider_error


def failed(code: int, body: dict | None) -> HTTPClientError:
    response = None
    if body is not None:
        response = HTTPResponse(HTTPRequest("http://idp/token"), code, buffer=io.BytesIO(json.dumps(body).encode()))
    return HTTPClientError(code, response=response)


@pytest.mark.parametrize(
    "error, status, words",
    [
        (failed(599, None), 503, "cannot be reached"),
        (failed(401, {"error": "invalid_client"}), 502, "check auth.client_id and the client secret"),
        (failed(400, {"error": "invalid_grant"}), 400, "sign in again"),
        (failed(500, {"oops": 1}), 502, "answered HTTP 500"),
    ],
)
def test_provider_failures_become_clear_pages(error, status, words):
    page = provider_error(error)
    assert page.status_code == status and words in page.log_message


def id_token(**claims) -> str:
    now = int(time.time())
    payload = {"iss": "http://idp:9", "aud": "gpuhub", "sub": "1", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, "any key: the signature is not what is checked", algorithm="HS256")


@pytest.fixture
def oidc():
    c = Config()
    c.OIDCAuthenticator.client_id = "gpuhub"
    c.OIDCAuthenticator.issuer = "http://idp:9"
    return OIDCAuthenticator(config=c)


def test_an_id_token_for_this_hub_passes(oidc):
    oidc.check_id_token(id_token())
    oidc.check_id_token(None)  # a plain OAuth2 provider returns none
    oidc.check_id_token(id_token(aud=["gpuhub", "other"]))


# Tokens are made when the test runs: one made at collection time expires
# before a long run reaches this test.
@pytest.mark.parametrize(
    "make_token, words",
    [
        (lambda: id_token(aud="someone-else"), "Audience doesn't match"),
        (lambda: id_token(iss="http://evil"), "Invalid issuer"),
        (lambda: id_token(exp=int(time.time()) - 600), "expired"),
        (lambda: "not-a-jwt", "Not enough segments"),
    ],
)
def test_a_foreign_expired_or_missing_id_token_is_refused(oidc, make_token, words):
    token = make_token()
    with pytest.raises(web.HTTPError) as e:
        oidc.check_id_token(token)
    assert e.value.status_code == 403 and words in e.value.log_message


def test_without_an_issuer_any_issuer_passes_but_the_audience_is_checked():
    c = Config()
    c.OIDCAuthenticator.client_id = "gpuhub"
    auth = OIDCAuthenticator(config=c)
    auth.check_id_token(id_token(iss="http://other"))
    with pytest.raises(web.HTTPError):
        auth.check_id_token(id_token(aud="x"))
