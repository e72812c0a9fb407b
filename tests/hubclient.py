"""A browser-like HTTP client of the test hub: real forms, real cookies."""

import html
import re
import time

import requests


def xsrf_of(page: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    return match.group(1) if match else ""


class Browser:
    """One person's session: sign up, log in, spawn through the hub's pages."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.s = requests.Session()

    def url(self, path: str) -> str:
        return self.base + path

    def form(self, path: str, page_path: str | None = None, **fields: str) -> requests.Response:
        """POST a hub form as the browser does: _xsrf from the page that shows it."""
        page = self.s.get(self.url(page_path or path), timeout=30).text
        r = self.s.post(self.url(path), data={**fields, "_xsrf": xsrf_of(page)}, timeout=30)
        assert r.status_code < 500, f"{path}: {r.status_code} {r.text[:500]}"
        return r

    def signup(self, username: str, password: str, confirmation: str | None = None) -> str:
        """The sign-up form; returns the page (its message says what happened)."""
        return self.form(
            "/hub/signup",
            username=username,
            signup_password=password,
            signup_password_confirmation=password if confirmation is None else confirmation,
        ).text

    def login(self, username: str, password: str) -> requests.Response:
        return self.form("/hub/login", username=username, password=password)

    def accept_invite(self, link: str, password: str, confirmation: str | None = None) -> requests.Response:
        """Open an invitation link (absolute, or a path on this hub) and set the password."""
        url = link if "://" in link else self.url(link)
        page = self.s.get(url, timeout=30)
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token, f"no invitation form at {link}: {page.status_code} {page.text[:500]}"
        return self.s.post(
            self.url("/hub/invite"),
            data={
                "token": html.unescape(token.group(1)),
                "password": password,
                "password_confirmation": password if confirmation is None else confirmation,
                "_xsrf": xsrf_of(page.text),
            },
            timeout=30,
        )

    def change_password(self, old: str, new: str, confirmation: str | None = None) -> requests.Response:
        return self.form(
            "/hub/change-password",
            old_password=old,
            new_password=new,
            new_password_confirmation=new if confirmation is None else confirmation,
        )

    def spawn_form(self) -> str:
        return self.s.get(self.url("/hub/spawn"), timeout=30).text

    def spawn(self, form: dict, timeout: float = 120) -> requests.Response:
        """Submit the spawn form to its action, which carries the xsrf token."""
        page = self.spawn_form()
        action = re.search(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', page, re.S)
        assert action, f"no spawn form on the page: {page[:500]}"
        return self.s.post(self.url(html.unescape(action.group(1))), data=form, timeout=timeout)

    def server_get(self, user: str, path: str, **kw) -> requests.Response:
        return self.s.get(self.url(f"/user/{user}{path}"), timeout=30, **kw)

    def wait_server(self, user: str, timeout: float = 120) -> None:
        """Open the server as a browser does (its OAuth dance sets the
        server's cookie), then wait for its API to answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.server_get(user, "/lab")
            r = self.server_get(user, "/api/status")
            if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
                return
            time.sleep(1)
        raise AssertionError(f"server of {user} did not answer within {timeout}s: {r.status_code} {r.text[:300]}")

    def contents_put(self, user: str, path: str, text: str) -> requests.Response:
        xsrf = self.s.cookies.get("_xsrf", path=f"/user/{user}/") or ""
        return self.s.put(
            self.url(f"/user/{user}/api/contents/{path}"),
            json={"type": "file", "format": "text", "content": text},
            headers={"X-XSRFToken": xsrf},
            timeout=30,
        )

    def contents_get(self, user: str, path: str) -> requests.Response:
        return self.server_get(user, f"/api/contents/{path}")
