"""Personal conda envs live in the workspace volume: the layout, for real.

The stand-in image has no conda, so no env is created here (the `conda` suite
does that where a channel exists); what is checked is that the envs folder the
system .condarc names is on the user's volume and survives the container.
"""

from pathlib import Path

import pytest
import yaml

from ..deployment import ROOT, api, exec_as_user, hubctl, user_containers, wait_stopped

pytestmark = pytest.mark.integration
CONDARC = yaml.safe_load((ROOT / "kernels/condarc").read_text())
PERSONAL = CONDARC["envs_dirs"][0]


def test_personal_envs_folder_survives_the_container(make_user, docker_client, admin_api):
    user, browser = make_user()
    browser.spawn({"profile": "cpu"})
    browser.wait_server(user)
    [container] = user_containers(docker_client, user)
    assert exec_as_user(container, "cat /etc/conda/.condarc") == (ROOT / "kernels/condarc").read_text()
    home = [m for m in container.attrs["Mounts"] if m["Type"] == "volume"][0]["Destination"]
    assert Path(PERSONAL).is_relative_to(home) and Path(CONDARC["pkgs_dirs"][0]).is_relative_to(home)
    exec_as_user(container, f"mkdir -p {PERSONAL}/myexp/conda-meta && echo made > {PERSONAL}/myexp/conda-meta/history")

    api(admin_api, "DELETE", f"/users/{user}/server")
    wait_stopped(admin_api, user)
    browser.spawn({"profile": "cpu"})
    browser.wait_server(user)
    [container] = user_containers(docker_client, user)
    assert exec_as_user(container, f"cat {PERSONAL}/myexp/conda-meta/history").strip() == "made"

    listing = hubctl("envs", "list").stdout
    assert any(line.split()[:2] == [user, "myexp"] for line in listing.splitlines()), listing
    export = hubctl("envs", "export", user, "myexp", check=False)
    assert export.returncode != 0 and "no conda" in export.stderr  # never a made-up result
