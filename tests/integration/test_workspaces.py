"""A removed account's workspace is archived, never handed to a new account of
the same name, and can be restored or deleted by an admin (hubctl workspaces)."""

import json

import pytest

from spawner.labels import LABEL_ACCOUNT, LABEL_DEPLOYMENT, LABEL_USER

from ..deployment import PREFIX, api, exec_as_user, hubctl, new_users, user_containers, wait_running, wait_stopped

pytestmark = pytest.mark.integration


def start(admin_api, docker_client, user: str):
    assert api(admin_api, "POST", f"/users/{user}/server", json={"profile": "cpu"}).status_code in (201, 202)
    wait_running(admin_api, user)
    [container] = user_containers(docker_client, user)
    return container


def stop(admin_api, user: str) -> None:
    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user)


def archives_of(user: str) -> list[dict]:
    return [a for a in json.loads(hubctl("workspaces", "list", "--json").stdout) if a["owner"] == user]


def test_a_reused_name_starts_empty_and_the_old_workspace_can_be_restored(admin_api, docker_client):
    [user] = new_users(admin_api, "ws", 1)
    exec_as_user(start(admin_api, docker_client, user), "echo thesis > ~/draft.txt && mkdir ~/.keys")
    stop(admin_api, user)

    assert "archived" in hubctl("users", "remove", user).stdout
    [archive] = archives_of(user)
    assert archive["name"].startswith(f"{PREFIX}-archive-{user}-")

    assert api(admin_api, "POST", f"/users/{user}").status_code == 201  # a stranger takes the name
    fresh = exec_as_user(start(admin_api, docker_client, user), "ls -A ~").split()
    assert "draft.txt" not in fresh and ".keys" not in fresh and ".bashrc" in fresh  # the image's skeleton only
    stop(admin_api, user)

    # The name now has a workspace: restoring over it is refused, to another user it works.
    refused = hubctl("workspaces", "restore", archive["name"], check=False)
    assert refused.returncode != 0 and "already has a workspace" in refused.stderr
    [heir] = new_users(admin_api, "heir", 1)
    assert heir in hubctl("workspaces", "restore", archive["name"], "--to", heir).stdout
    assert exec_as_user(start(admin_api, docker_client, heir), "cat ~/draft.txt; ls -d ~/.keys") == (
        "thesis\n/home/jovyan/.keys\n"
    )
    stop(admin_api, heir)
    assert archives_of(user) == []  # restored: no longer an archive


def test_an_archive_is_deleted_only_when_its_name_is_typed_again(admin_api, docker_client):
    [user] = new_users(admin_api, "del", 1)
    start(admin_api, docker_client, user)
    stop(admin_api, user)
    assert "archived" in hubctl("workspaces", "archive", user).stdout
    [archive] = archives_of(user)

    wrong = hubctl("workspaces", "delete", archive["name"], "--confirm", "something-else", check=False)
    assert wrong.returncode != 0 and "nothing deleted" in wrong.stderr
    assert archives_of(user) == [archive]
    assert "deleted" in hubctl("workspaces", "delete", archive["name"], "--confirm", archive["name"]).stdout
    assert archives_of(user) == []
    assert docker_client.volumes.list(filters={"name": archive["name"]}) == []


def test_a_workspace_left_by_an_earlier_account_is_refused(admin_api, docker_client):
    """Where archiving failed, the old volume is still there: the new account must not get it."""
    [user] = new_users(admin_api, "old", 1)
    docker_client.volumes.create(
        f"{PREFIX}-home-{user}",
        labels={LABEL_DEPLOYMENT: PREFIX, LABEL_USER: user, LABEL_ACCOUNT: "2001-01-01T00:00:00"},
    )
    r = api(admin_api, "POST", f"/users/{user}/server", json={"profile": "cpu"})
    assert r.status_code == 409 and "earlier account" in r.json()["message"], r.text
    assert user_containers(docker_client, user) == []
