"""What configure.apply sets up for operating the lab (issue 11): the ledger service, the
metrics service with read:metrics and nothing else, metrics behind that scope, /hub/gpus."""

import stat

from traitlets.config import Config

from spawner import gpupage, usage
from spawner.configure import apply
from spawner.settings import load_settings


def configured(tmp_path, **settings) -> Config:
    env = {"GPUHUB_DATA_DIR": str(tmp_path / "data"), **{f"GPUHUB_{k.upper()}": v for k, v in settings.items()}}
    c = Config()
    apply(load_settings(env), c)
    return c


def test_metrics_need_a_token_with_read_metrics_which_only_the_metrics_service_holds(tmp_path):
    c = configured(tmp_path)
    assert c.JupyterHub.authenticate_prometheus is True
    [role] = [r for r in c.JupyterHub.load_roles if r["name"] == "metrics"]
    assert role == {"name": "metrics", "services": ["metrics"], "scopes": ["read:metrics"]}
    assert [r["name"] for r in c.JupyterHub.load_roles if "read:metrics" in r["scopes"]] == ["metrics"]
    [service] = [s for s in c.JupyterHub.services if s["name"] == "metrics"]
    token = tmp_path / "data/secrets/metrics_token"
    assert service == {"name": "metrics", "api_token": token.read_text().strip()}
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_the_ledger_service_keeps_this_deployments_ledger_in_the_data_dir(tmp_path):
    c = configured(tmp_path, prefix="lab")
    [service] = [s for s in c.JupyterHub.services if s["name"] == "usage-ledger"]
    ledger = str(tmp_path / "data" / usage.LEDGER_FILE)
    assert service["command"] == ["python3", "-m", "spawner.usage", f"--db={ledger}", "--prefix=lab"]
    assert "api_token" not in service  # it reads Docker, never the hub's API


def test_the_gpu_page_is_served_at_hub_gpus_with_the_same_ledger(tmp_path):
    [(route, handler, kwargs)] = configured(tmp_path).JupyterHub.extra_handlers
    assert (route, handler) == (r"/gpus", gpupage.GpusHandler)
    assert kwargs["ledger"] == str(tmp_path / "data" / usage.LEDGER_FILE)
