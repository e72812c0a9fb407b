"""Sign a user up through the hub's own sign-up form (NativeAuthenticator)."""

import http.cookiejar
import re
import urllib.parse
import urllib.request


def signup(hub_url: str, username: str, password: str, timeout: float = 30) -> str:
    """Submit the sign-up form as a browser would; return the page's message."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = hub_url.rstrip("/") + "/hub/signup"
    with opener.open(url, timeout=timeout) as resp:
        page = resp.read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page)
    form = {
        "username": username,
        "signup_password": password,
        "signup_password_confirmation": password,
        "_xsrf": xsrf.group(1) if xsrf else "",
    }
    data = urllib.parse.urlencode(form).encode()
    with opener.open(url, data=data, timeout=timeout) as resp:
        page = resp.read().decode()
    alert = re.search(r'class="alert [^"]*"[^>]*>(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", alert.group(1)).strip() if alert else ""
