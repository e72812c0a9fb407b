"""`hubctl k8s-values`: the settings as values of the Zero to JupyterHub chart.

No cluster: the values are validated against the pinned chart's own schema
(over its defaults, as Helm does), and each profile's pod is rendered by the
real KubeSpawner (`get_pod_manifest`) from the hub configuration the chart
makes of them (tests/unit/z2jhchart.py). The one seam: a kubeconfig naming a
server that is never contacted, which KubeSpawner's constructor requires.
"""

import asyncio
import importlib
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from kubernetes_asyncio.config import kube_config
from nativeauthenticator import NativeAuthenticator
from traitlets.config import Config

from spawner import profiles
from spawner.auth.oauth import CLASSES
from spawner.configure import apply
from spawner.hubctl import __main__ as hubctl
from spawner.hubctl.k8svalues import (
    ADMIN_ONLY_CONFIG,
    CARRIED,
    CHART_VERSION,
    CONDARC_PATH,
    HOME_MOUNT,
    NOT_CARRIED,
    K8sValuesError,
    k8s_quantity,
    k8s_values,
    render,
)
from spawner.providers import parse_auth
from spawner.settings import DEFAULT_IMAGE, ENV_PREFIX, SCHEMA, load_settings

from .test_providers import MINIMAL
from .z2jhchart import (
    CHART_DIR,
    CHART_TEMPLATES,
    DEFAULTS,
    SINGLEUSER_TO_SPAWNER,
    chart_config,
    culler_command,
    helm_merge,
    secret_files,
)
from .z2jhchart import SCHEMA as CHART_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
CONDARC = (ROOT / "kernels" / "condarc").read_text(encoding="utf-8")
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""
# A site's profiles: options whose choices change the GPU count, and an admin-only profile.
SITE_PROFILES = [
    {"display_name": "Lab", "slug": "lab", "default": True,
     "spawner_override": {"mem_limit": "16G", "cpu_limit": 4, "shm_size": "3G",
                          "environment": {"WANDB_MODE": "offline"}},
     "profile_options": {"size": {"display_name": "Size", "choices": {
         "cpu": {"display_name": "CPU", "default": True, "spawner_override": {"gpus": 0}},
         "gpu": {"display_name": "1 GPU", "spawner_override": {"gpus": 1, "image": "lab/gpu:2"}}}}}},
    {"display_name": "Big", "slug": "big", "admin_only": True,
     "kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": 4}, "mem_limit": "128G"}},
]  # fmt: skip


def settings(**values):
    """The schema's defaults with ``values`` over them, parsed as the hub parses them."""
    base = {name: setting.default for name, setting in SCHEMA.items()}
    return {**base, **{key: SCHEMA[key].parse(value) for key, value in values.items()}}


def validate(values):
    """As `helm install` validates: the site's values over the chart's defaults, against its schema."""
    jsonschema.validate(helm_merge(DEFAULTS, values), CHART_SCHEMA)


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """KubeSpawner loads a kubeconfig as it is made; this one names a server never contacted.
    The client reads $KUBECONFIG once, at import: its default location is the seam."""
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG, encoding="utf-8")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


async def pod(values, profile, *, admin=False, options=None):
    """The pod KubeSpawner makes for ``profile`` (and ``options``) from the chart's config of ``values``."""
    from kubespawner import KubeSpawner  # imported here: its import is slow and only these tests need it

    user = SimpleNamespace(name="ada", id=7, url="/user/ada/", admin=admin)
    spawner = KubeSpawner(config=chart_config(values), user=user, _mock=True)
    try:
        spawner.user_options = {"profile": profile, **(options or {})}
        await spawner.load_user_options()
        return spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    finally:
        await spawner.api.api_client.close()


def container(manifest):
    (notebook,) = manifest["spec"]["containers"]
    return notebook


def volume_at(manifest, path):
    """The volume mounted at ``path``, with its mount."""
    (mount,) = [m for m in container(manifest)["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in manifest["spec"]["volumes"] if v["name"] == mount["name"]]
    return volume, mount


def env(manifest):
    return {item["name"]: item.get("value") for item in container(manifest).get("env", [])}


# -- the pinned chart -------------------------------------------------------


def test_test_data_is_the_chart_version_the_generator_pins():
    readme = (CHART_DIR / "README.md").read_text(encoding="utf-8")
    assert f"tag `{CHART_VERSION}`" in readme
    assert CHART_SCHEMA["$schema"].startswith("http://json-schema.org/draft-07")


def test_the_pinned_schema_refuses_what_the_chart_does_not_know():
    validate({})  # the chart's own defaults pass
    with pytest.raises(jsonschema.ValidationError, match="homeMountPth"):
        validate({"singleuser": {"storage": {"homeMountPth": "/home/jovyan"}}})
    with pytest.raises(jsonschema.ValidationError):
        validate({"singleuser": {"cpu": {"limit": "2"}}})


# -- every setting carried or named ------------------------------------------


def test_every_setting_is_carried_or_named_as_not_carried():
    assert set(SCHEMA) <= set(CARRIED) | set(NOT_CARRIED)
    assert not set(CARRIED) & set(NOT_CARRIED)


def test_a_setting_that_is_not_carried_is_a_warning_only_where_the_site_set_it():
    _, notes = k8s_values(settings(gpu_quota=2, shared_data="/srv/data"), CONDARC)
    keys = {note.key for note in notes}
    assert {"gpu_quota", "shared_data"} <= keys
    assert not keys & (set(NOT_CARRIED) - {"gpu_quota", "shared_data"})


def test_the_file_names_everything_that_did_not_carry_over():
    values, notes = k8s_values(settings(gpu_mode="runtime"), CONDARC)
    text = render(values, notes, "settings.yml")
    header = text.split("\nhub:", 1)[0]
    assert f"--version {CHART_VERSION}" in header
    for key in NOT_CARRIED:
        assert f"#   {key}: " in header
    for key, where in CARRIED.items():
        assert f"#   {key} -> {where}" in header
    assert "profile 'gpu-all': left out" in header and "PlatformAuthenticator" in header
    assert yaml.safe_load(text) == values


# -- schema validation --------------------------------------------------------


@pytest.mark.parametrize(
    "site",
    [
        {},
        {"profiles": SITE_PROFILES, "idle_timeout": 0, "isolate_servers": "false", "pull_policy": "skip"},
        {"image": "registry.lab:5000/gpu/notebook", "mem_limit": "512M", "cpu_limit": 0.5, "log_level": "debug"},
    ],
    ids=["defaults", "site-profiles", "registry-image"],
)
def test_values_validate_against_the_chart_schema(site):
    values, _ = k8s_values(settings(**site), CONDARC, all_gpus=8)
    validate(values)


def test_values_of_the_integration_deployment_validate():
    site = load_settings({"GPUHUB_SETTINGS_FILE": str(ROOT / "tests" / "integration" / "settings.yml")})
    values, notes = k8s_values(site, CONDARC)
    validate(values)
    assert {"gpus", "gpu_mode", "gpu_runtime", "gpu_quota", "gpu_group_quotas", "shared_data"} <= {
        note.key for note in notes
    }
    assert values["cull"] == {"enabled": False}
    assert values["singleuser"]["image"]["pullPolicy"] == "Never"


def test_the_generator_writes_only_singleuser_keys_the_chart_maps():
    values, _ = k8s_values(settings(profiles=SITE_PROFILES), CONDARC)
    assert set(values["singleuser"]) <= set(SINGLEUSER_TO_SPAWNER) | CHART_TEMPLATES


# -- pods rendered by KubeSpawner ---------------------------------------------

BUILTIN = {p["slug"]: p["spawner_override"] for p in profiles.DEFAULT_PROFILES}


@pytest.mark.parametrize("slug", list(BUILTIN))
async def test_each_builtin_profile_renders_a_pod_with_its_gpus_shm_user_and_home(kubeconfig, slug):
    values, _ = k8s_values(settings(), CONDARC, all_gpus=8)
    manifest = await pod(values, slug, admin=True)
    override = BUILTIN[slug]
    notebook = container(manifest)
    gpus = 8 if override["gpus"] == "all" else override["gpus"]

    limits = notebook["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == (gpus or None)
    assert env(manifest).get("NVIDIA_VISIBLE_DEVICES") == (None if gpus else "void")
    if "mem_limit" in override:
        assert (
            notebook["resources"]["requests"]["memory"] == limits["memory"] == int(override["mem_limit"][:-1]) * 2**30
        )

    shm, _ = volume_at(manifest, "/dev/shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": k8s_quantity(override["shm_size"])}

    context = notebook["securityContext"]
    assert context["runAsUser"] == 1000 and context["runAsGroup"] == 100
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert manifest["spec"]["securityContext"]["fsGroup"] == 100

    home, _ = volume_at(manifest, HOME_MOUNT)
    assert home["persistentVolumeClaim"]["claimName"] == "claim-ada"

    condarc, mount = volume_at(manifest, CONDARC_PATH)
    assert condarc["secret"]["items"] == [{"key": mount["subPath"], "path": mount["subPath"]}]
    assert secret_files(values)[mount["subPath"]] == CONDARC


@pytest.mark.parametrize(("choice", "gpus", "image"), [("cpu", None, DEFAULT_IMAGE), ("gpu", 1, "lab/gpu:2")])
async def test_a_choice_sets_its_own_gpu_count_over_its_profile(kubeconfig, choice, gpus, image):
    values, _ = k8s_values(settings(profiles=SITE_PROFILES), CONDARC)
    manifest = await pod(values, "lab", options={"size": choice})
    notebook = container(manifest)
    assert notebook["resources"]["limits"].get("nvidia.com/gpu") == gpus
    assert notebook["image"] == image
    assert env(manifest)["WANDB_MODE"] == "offline"
    assert env(manifest).get("NVIDIA_VISIBLE_DEVICES") == (None if gpus else "void")
    shm, _ = volume_at(manifest, "/dev/shm")
    assert shm["emptyDir"]["sizeLimit"] == "3Gi"
    assert notebook["resources"]["requests"]["cpu"] == notebook["resources"]["limits"]["cpu"] == 4


async def test_a_kubespawner_gpu_profile_keeps_its_count(kubeconfig):
    values, _ = k8s_values(settings(profiles=SITE_PROFILES), CONDARC)
    manifest = await pod(values, "big", admin=True)
    assert container(manifest)["resources"]["limits"]["nvidia.com/gpu"] == 4


async def test_an_admin_only_profile_is_refused_to_other_users(kubeconfig):
    values, _ = k8s_values(settings(profiles=SITE_PROFILES), CONDARC)
    with pytest.raises(ValueError, match="big"):
        await pod(values, "big", admin=False)
    assert values["hub"]["extraConfig"] == {"gpuhub-admin-only-profiles": ADMIN_ONLY_CONFIG}


async def test_site_defaults_apply_where_a_profile_sets_nothing(kubeconfig):
    site = [{"display_name": "Plain", "slug": "plain"}]
    values, _ = k8s_values(settings(profiles=site, mem_limit="6G", cpu_limit=3, shm_size="5G"), CONDARC)
    manifest = await pod(values, "plain")
    resources = container(manifest)["resources"]
    assert resources["limits"]["memory"] == resources["requests"]["memory"] == 6 * 2**30
    assert resources["limits"]["cpu"] == 3 and "nvidia.com/gpu" not in resources["limits"]
    assert volume_at(manifest, "/dev/shm")[0]["emptyDir"]["sizeLimit"] == "5Gi"


# -- hub: culler, authenticator ----------------------------------------------


@pytest.mark.parametrize("timeout", [0, 10, 3600, 86400])
def test_the_charts_culler_runs_as_the_hubs(tmp_path, timeout):
    site = settings(idle_timeout=timeout, data_dir=str(tmp_path))
    values, _ = k8s_values(site, CONDARC)
    c = Config()
    apply(site, c)  # its process-wide HTTPServer default is undone by conftest
    hub = [s["command"] for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    chart = culler_command(values)
    if not timeout:
        assert not hub and chart is None
    else:
        flags = [arg for arg in chart if arg.startswith("--") and not arg.startswith("--url")]
        # --config: the hub's per-profile hook (spawner/cullerconfig.py), which the chart's culler lacks
        assert flags == [arg for arg in hub[0] if arg.startswith("--") and not arg.startswith("--config")]


def test_the_public_url_is_the_charts_hubs():
    values, _ = k8s_values({**settings(), "public_url": "https://gpu.example.org/"}, CONDARC)
    validate(values)
    assert chart_config(values).JupyterHub.public_url == "https://gpu.example.org/"


def test_the_charts_hub_logs_in_with_nativeauthenticator_as_the_hub_does():
    values, _ = k8s_values(settings(admin_users="ada,bob"), CONDARC)
    c = chart_config(values)
    # the chart's hub resolves the name through JupyterHub's entry points, as this does
    assert JupyterHub.class_traits()["authenticator_class"].validate(None, c.JupyterHub.authenticator_class) is (
        NativeAuthenticator
    )
    auth = NativeAuthenticator(config=c, db=orm.new_session_factory("sqlite://")())
    assert auth.create_user("ada", "short") is None  # the hub's password rule
    assert auth.create_user("ada", "tiger-lily-orbit-9").is_authorized  # an admin: approved at sign-up
    assert not auth.create_user("eve", "tiger-lily-orbit-9").is_authorized  # others wait for approval
    assert asyncio.run(auth.authenticate(None, {"username": "ada", "password": "tiger-lily-orbit-9"})) == "ada"
    assert asyncio.run(auth.authenticate(None, {"username": "eve", "password": "tiger-lily-orbit-9"})) is None


# -- what the chart cannot express --------------------------------------------


def test_a_docker_only_override_is_refused_naming_profile_and_key():
    site = [{"display_name": "X", "slug": "x", "spawner_override": {"read_only_volumes": {"/srv/models": "/models"}}}]
    with pytest.raises(K8sValuesError, match=r"profile 'x': 'read_only_volumes' .*no KubeSpawner equivalent"):
        k8s_values(settings(profiles=site), CONDARC)


def test_a_profile_asking_for_all_gpus_is_left_out_by_name_unless_a_count_is_given():
    values, notes = k8s_values(settings(), CONDARC)
    assert "gpu-all" not in [p["slug"] for p in values["singleuser"]["profileList"]]
    assert any(note.key == "profile 'gpu-all'" and "--all-gpus" in note.why for note in notes)
    values, _ = k8s_values(settings(), CONDARC, all_gpus=4)
    (entry,) = [p for p in values["singleuser"]["profileList"] if p["slug"] == "gpu-all"]
    assert entry["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": 4}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"gpu_quota": 4}, r"Profile 'x': 'gpu_quota' may not be set by a profile"),
        ({"mem_limit": "lots"}, r"Profile 'x': mem_limit='lots' must be a size"),
        ({"memlimit": "8G"}, r"Profile 'x': 'memlimit' is not a setting"),
    ],
)
def test_a_profile_the_hub_refuses_is_refused_with_the_hubs_message(override, message):
    site = [{"display_name": "X", "slug": "x", "spawner_override": override}]
    with pytest.raises(K8sValuesError, match=message):
        k8s_values(settings(profiles=site), CONDARC)


@pytest.mark.parametrize("provider", ["oidc", "github", "gitlab", "google"])
def test_an_identity_provider_is_oauthenticators_class_with_the_secret_in_a_kubernetes_secret(provider, tmp_path):
    auth = parse_auth({**MINIMAL[provider], "allowed_users": ["ada"]})
    site = {**settings(data_dir=str(tmp_path)), "auth": auth, "public_url": "https://gpu.example.org/"}
    values, notes = k8s_values(site, CONDARC)
    validate(values)
    config = values["hub"]["config"]
    module, name = config["JupyterHub"]["authenticator_class"].rsplit(".", 1)
    upstream = getattr(importlib.import_module(module), name)
    assert module.startswith("oauthenticator.") and issubclass(CLASSES[provider], upstream)
    traits = config[name]
    assert traits["client_id"] == auth["client_id"] and "client_secret" not in traits
    assert traits["oauth_callback_url"] == "https://gpu.example.org/hub/oauth_callback"
    assert set(traits) <= set(upstream.class_trait_names(config=True)), "a trait the chart's hub would not know"
    assert config["Authenticator"]["enable_auth_state"] and config["Authenticator"]["allowed_users"] == ["ada"]
    secret = values["hub"]["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "gpuhub-oauth", "key": "client-secret"}
    assert [n for n in notes if n.key == "auth" and "kubectl create secret generic gpuhub-oauth" in n.why]
    assert list(tmp_path.iterdir()) == []  # no secret of the hub read or made


def test_oidc_groups_carry_and_the_issuer_check_is_named_as_not_carried():
    auth = parse_auth({**MINIMAL["oidc"], "admin_groups": ["admins"], "issuer": "https://sso.example.org"})
    values, notes = k8s_values({**settings(), "auth": auth}, CONDARC)
    traits = values["hub"]["config"]["GenericOAuthenticator"]
    assert traits["manage_groups"] and traits["allowed_groups"] == ["lab"] and traits["admin_groups"] == ["admins"]
    assert traits["auth_state_groups_key"] == "oauth_user.groups" and "issuer" not in traits
    assert [n for n in notes if n.key == "auth.issuer"]


def test_no_profile_left_is_an_error():
    site = [{"display_name": "All", "slug": "all", "spawner_override": {"gpus": "all"}}]
    with pytest.raises(K8sValuesError, match="no profile is left"):
        k8s_values(settings(profiles=site), CONDARC)


def test_a_shared_gpu_is_a_named_warning():
    site = [{"display_name": "Shared", "slug": "shared", "spawner_override": {"gpus": 1, "gpu_shared": True}}]
    values, notes = k8s_values(settings(profiles=site), CONDARC)
    assert [n for n in notes if n.key == "profile 'shared' gpu_shared"]
    assert values["singleuser"]["profileList"][0]["kubespawner_override"]["extra_resource_limits"] == {
        "nvidia.com/gpu": 1
    }


def test_profile_text_never_reaches_the_hubs_python():
    hostile = "'''\nimport os; os.system('id')\n\"\"\""
    site = [{"display_name": hostile, "slug": "x", "description": hostile, "admin_only": True}]
    values, _ = k8s_values(settings(profiles=site), CONDARC)
    assert values["hub"]["extraConfig"] == {"gpuhub-admin-only-profiles": ADMIN_ONLY_CONFIG}
    assert yaml.safe_load(render(values, [], "x"))["singleuser"]["profileList"][0]["display_name"] == hostile


@pytest.mark.parametrize(
    ("image", "name", "tag", "joined"),
    [
        ("lab/gpu:2", "lab/gpu", "2", "lab/gpu:2"),
        ("registry.lab:5000/gpu", "registry.lab:5000/gpu", "latest", "registry.lab:5000/gpu:latest"),
        ("lab/gpu@sha256:abc", "lab/gpu@sha256", "abc", "lab/gpu@sha256:abc"),
    ],
)
def test_the_image_splits_so_that_the_chart_joins_it_back(image, name, tag, joined):
    values, _ = k8s_values(settings(image=image), CONDARC)
    assert (values["singleuser"]["image"]["name"], values["singleuser"]["image"]["tag"]) == (name, tag)
    assert chart_config(values).KubeSpawner.image == joined


@pytest.mark.parametrize(("size", "quantity"), [("2G", "2Gi"), ("512m", "512Mi"), ("1.5T", "1.5Ti"), (1024, "1024")])
def test_sizes_keep_their_1024_based_meaning(size, quantity):
    assert k8s_quantity(size) == quantity


# -- the command ---------------------------------------------------------------


def _run(args, monkeypatch, capsys):
    for name in [n for n in list(__import__("os").environ) if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    code = hubctl.main(["k8s-values", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_needs_no_hub(tmp_path):
    path = tmp_path / "settings.yml"
    path.write_text("idle_timeout: 600\ngpu_quota: 1\n", encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "GPUHUB_TAG": "k8s"}  # a script's variable, not a setting
    run = subprocess.run(
        [sys.executable, "-m", "spawner.hubctl", "k8s-values", "--settings", str(path)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    values = yaml.safe_load(run.stdout)
    validate(values)
    assert values["cull"]["timeout"] == 600
    assert "warning: gpu_quota: not carried" in run.stderr


def test_bad_settings_stop_the_command_with_nothing_written(tmp_path, monkeypatch, capsys):
    path = tmp_path / "settings.yml"
    path.write_text("idle_timout: 600\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="idle_timout"):
        _run(["--settings", str(path)], monkeypatch, capsys)
    assert capsys.readouterr().out == ""


def test_a_missing_condarc_stops_the_command_naming_it(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit, match=r"nowhere/condarc.*--condarc"):
        _run(["--condarc", str(tmp_path / "nowhere" / "condarc")], monkeypatch, capsys)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("args", [["--all-gpus", "0"], ["--all-gpus", "-1"], ["--home-size", "lots"]])
def test_bad_arguments_are_refused(args, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        _run(args, monkeypatch, capsys)
    assert exit_.value.code == 2


def test_home_size_becomes_the_claims_capacity(monkeypatch, capsys):
    code, out, _ = _run(["--home-size", "50G"], monkeypatch, capsys)
    assert code == 0 and yaml.safe_load(out)["singleuser"]["storage"]["capacity"] == "50Gi"
