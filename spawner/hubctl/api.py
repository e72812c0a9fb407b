"""A small client of the hub's REST API, authenticated by hubctl's service token."""

import json
import os
import urllib.error
import urllib.request

from ..hubsecrets import HUBCTL_TOKEN, secret_path
from ..settings import load_settings


class ApiError(RuntimeError):
    """The hub answered with an error; the message is the hub's own."""

    def __init__(self, status: int, message: str):
        super().__init__(f"hub API error {status}: {message}")
        self.status = status


class HubApi:
    def __init__(self, url: str | None = None, token: str | None = None):
        settings = load_settings()
        self.settings = settings
        self.url = (url or os.environ.get("HUBCTL_API_URL", "http://127.0.0.1:8081/hub/api")).rstrip("/")
        if token is None:
            with open(secret_path(settings["data_dir"], HUBCTL_TOKEN), encoding="ascii") as f:
                token = f.read().strip()
        self.token = token

    def request(self, method: str, path: str, body=None, timeout: float = 120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, _message(e.read()) or e.reason) from None
        return json.loads(payload) if payload else None

    def get(self, path):
        return self.request("GET", path)


def _message(payload: bytes) -> str:
    try:
        return json.loads(payload).get("message", "")
    except (ValueError, AttributeError):
        return payload.decode(errors="replace").strip()
