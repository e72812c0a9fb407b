"""`hubctl envs list` rows (spawner/hubctl/envs.py): a personal env that takes a
team env's kernel name is marked, with what to do; the others are not."""

from spawner.condakernels import TEAM_ENVS_DIR
from spawner.hubctl.envs import personal_rows

TEAM = [f"{TEAM_ENVS_DIR}/python310", f"{TEAM_ENVS_DIR}/pytorch"]
HOME_ENVS = "/home/jovyan/conda-envs"


def test_a_personal_env_with_a_team_name_is_marked():
    rows = personal_rows("alice", [(2048, f"{HOME_ENVS}/python310"), (1024, f"{HOME_ENVS}/myexp")], TEAM)
    shadowing, other = rows
    assert shadowing["owner"] == "alice" and shadowing["env"] == "python310" and shadowing["size_mib"] == 2
    assert shadowing["shadows"] == "python310"
    assert "listed as 'conda-python310'" in shadowing["warning"]
    assert shadowing["warning"].endswith(f"conda rename -p {HOME_ENVS}/python310 NEW_NAME")
    assert other == {"owner": "alice", "env": "myexp", "size_mib": 1, "path": f"{HOME_ENVS}/myexp", "shadows": None}


def test_nothing_is_marked_without_team_envs():
    # The stand-in image has no /opt/conda/envs: no name can be taken.
    [row] = personal_rows("bob", [(0, f"{HOME_ENVS}/python310")], [])
    assert row["shadows"] is None and "warning" not in row
