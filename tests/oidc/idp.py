"""A real OpenID Provider for the tests: oidc-provider in a container
(provider/ beside this file), started on a Docker network so that the same URL
answers on the host (a published 127.0.0.1 port) and, through a network alias,
in other containers (the hub).

    idp = TestProvider(client, "gpuhub-test-idp", "gpuhub-test", "idp", 18050,
                       "hub", secret, ["http://127.0.0.1:18000/hub/oauth_callback"],
                       {"ada": {"password": "pw", "preferred_username": "ada", "groups": ["lab"]}})
    idp.start(); idp.wait_ready()
    ... idp.set_groups("ada", ["lab", "bigjobs"]); idp.set_faults(id_token_audience=idp.other_client_id)
    idp.remove()
"""

import hashlib
import io
import json
import secrets
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import quote

import docker
import requests

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = Path(__file__).resolve().parent / "provider"
IMAGE = "gpuhub/test-idp"
# The build context, laid out like the repository root (the Dockerfile's COPY
# paths). .build/extra-ca.crt is written by scripts/build-images (make images).
CONTEXT = [
    "tests/oidc/provider/Dockerfile",
    "tests/oidc/provider/package.json",
    "tests/oidc/provider/package-lock.json",
    "tests/oidc/provider/provider.mjs",
    "images/trust-extra-ca.sh",
    ".build/extra-ca.crt",
]
DOCKERFILE = CONTEXT[0]
# Bases as scripts/build-images chooses them: the upstream one, else its local fallback.
BASES = ("debian:bookworm-slim", "local/debian:bookworm")
# oidc-provider's endpoint paths (its defaults; test_provider checks them against discovery).
AUTHORIZE, TOKEN, USERINFO = "/auth", "/token", "/me"


def base_image(client: docker.DockerClient) -> str:
    for name in BASES:
        try:
            client.images.get(name)
            return name
        except docker.errors.ImageNotFound:
            continue
    raise RuntimeError(f"none of the base images {', '.join(BASES)} is here: run `make images`")


def build(client: docker.DockerClient, base: str | None = None) -> str:
    """The provider's image, tagged by the hash of its context and base, so an
    unchanged provider is never rebuilt; returns the tag."""
    base = base or base_image(client)
    missing = [name for name in CONTEXT if not (ROOT / name).is_file()]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run `make images` (it writes .build/extra-ca.crt)")
    digest = hashlib.sha256(f"{base}\0{client.images.get(base).id}\0".encode())
    for name in CONTEXT:
        digest.update(f"{name}\0".encode() + (ROOT / name).read_bytes() + b"\0")
    tag = f"{IMAGE}:{digest.hexdigest()[:16]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name in CONTEXT:
            tar.add(ROOT / name, arcname=name)
    context.seek(0)
    try:
        client.images.build(
            fileobj=context, custom_context=True, dockerfile=DOCKERFILE, tag=tag,
            buildargs={"BASE_IMAGE": base}, rm=True, forcerm=True,
        )  # fmt: skip
    except docker.errors.BuildError as e:
        log = "".join(str(line.get("stream") or line.get("error") or "") for line in e.build_log)
        raise RuntimeError(f"building {tag} failed: {e.msg}\n{log[-3000:]}") from e
    return tag


class TestProvider:
    """One provider container: a confidential client, the given users (login id
    -> password, preferred_username, name, email, groups), a control key of its
    own. State (sessions, tokens, changed groups, faults, signing key) lives in
    the container's memory: stop() then start() is a provider that forgot it all."""

    __test__ = False  # a helper, not a test class

    def __init__(
        self,
        client: docker.DockerClient,
        name: str,
        network: str,
        alias: str,
        port: int,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        users: dict[str, dict],
        *,
        other_client_id: str = "someone-else",
        labels: dict[str, str] | None = None,
    ):
        self.client, self.name, self.network, self.alias, self.port = client, name, network, alias, port
        self.client_id, self.client_secret, self.redirect_uris = client_id, client_secret, redirect_uris
        self.users, self.labels = users, labels or {}
        # The audience fault hands out ID tokens issued to this other registered client.
        self.other_client_id = other_client_id
        self.control_key = secrets.token_urlsafe(32)
        # Browser- and host-facing (the issuer is fixed: the tokens' iss).
        self.issuer = f"http://127.0.0.1:{port}"
        self.authorize_url = self.issuer + AUTHORIZE
        # Container-facing: the hub reaches the provider by its alias on the network.
        self.internal_url = f"http://{alias}:{port}"
        self.token_url = self.internal_url + TOKEN
        self.userdata_url = self.internal_url + USERINFO

    def url(self, path: str) -> str:
        """A host-facing URL of the provider (the test process's back channel)."""
        return self.issuer + path

    def start(self) -> None:
        """Start the container, creating it (and building the image) the first time."""
        try:
            self.client.containers.get(self.name).start()
            return
        except docker.errors.NotFound:
            pass
        self.client.containers.run(
            build(self.client),
            name=self.name,
            detach=True,
            environment={
                "IDP_ISSUER": self.issuer,
                "IDP_PORT": str(self.port),
                "IDP_CLIENT_ID": self.client_id,
                "IDP_CLIENT_SECRET": self.client_secret,
                "IDP_REDIRECT_URIS": ",".join(self.redirect_uris),
                "IDP_OTHER_CLIENT_ID": self.other_client_id,
                "IDP_USERS": json.dumps(self.users),
                "IDP_CONTROL_KEY": self.control_key,
            },
            network=self.network,
            networking_config={self.network: self.client.api.create_endpoint_config(aliases=[self.alias])},
            ports={f"{self.port}/tcp": ("127.0.0.1", self.port)},
            labels=self.labels,
        )

    def logs(self) -> str:
        try:
            return self.client.containers.get(self.name).logs(tail=100).decode(errors="replace")
        except docker.errors.NotFound:
            return f"(no container {self.name})"

    def wait_ready(self, timeout: float = 30) -> dict:
        """Wait until the discovery document answers; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container = self.client.containers.get(self.name)
            if container.status == "exited":
                raise AssertionError(f"provider {self.name} exited:\n{self.logs()}")
            try:
                r = requests.get(self.url("/.well-known/openid-configuration"), timeout=2)
                if r.ok:
                    return r.json()
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"provider {self.name} not ready after {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        self.client.containers.get(self.name).stop(timeout=5)

    def remove(self) -> None:
        try:
            self.client.containers.get(self.name).remove(force=True)
        except docker.errors.NotFound:
            pass

    def _control(self, path: str, value) -> dict:
        r = requests.put(
            self.url(path), json=value, headers={"Authorization": f"Bearer {self.control_key}"}, timeout=10
        )
        if not r.ok:
            raise AssertionError(f"PUT {path} {value!r}: {r.status_code} {r.text}")
        return r.json()

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Change a user's groups: the next userinfo answer carries them."""
        self._control(f"/test/users/{quote(user, safe='')}/groups", groups)

    def set_faults(self, **faults) -> None:
        """Faults of the provider until the next call; none: all cleared.
        id_token_audience=<other_client_id>: ID tokens issued to that client."""
        self._control("/test/faults", faults)


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m tests.oidc.idp build")
    started = time.monotonic()
    tag = build(docker.from_env(timeout=600))
    print(f"{tag} ({time.monotonic() - started:.0f}s)")
