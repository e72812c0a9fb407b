"""The profile chain: form -> options -> validate -> resolve, and the form HTML."""

import copy
import re

import pytest

from spawner import profiles
from spawner.profiles import ProfileError

IMAGE_OPTION = {
    "display_name": "Image",
    "choices": {
        "torch": {"display_name": "PyTorch", "default": True,
                  "spawner_override": {"image": "lab/torch:1"}},
        "jax": {"display_name": "JAX", "kubespawner_override": {"image": "lab/jax:1"}},
    },
}  # fmt: skip

LAB = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "CPU only",
        "default": True,
        "spawner_override": {"gpus": 0, "mem_limit": "4G", "extra_host_config": {"a": 1}},
    },
    {
        "display_name": "Two GPUs",
        "slug": "duo",
        "description": "Up to two GPUs",
        "spawner_override": {"gpus": 2, "shm_size": "4G", "extra_host_config": {"b": 2}},
        "profile_options": {
            "image": IMAGE_OPTION,
            "size": {
                "display_name": "GPUs",
                "choices": {
                    "two": {"display_name": "2", "spawner_override": {}},
                    "one": {"display_name": "1", "spawner_override": {"gpus": 1}},
                },
            },
        },
    },
    {
        "display_name": "Whole box",
        "slug": "box",
        "admin_only": True,
        "kubespawner_override": {"gpus": "all", "gpu_shared": False},
    },
]


@pytest.fixture
def lab():
    """The lab profiles, checked afterwards for mutation."""
    pristine = copy.deepcopy(LAB)
    yield LAB
    assert LAB == pristine, "configured profiles were mutated"


def chain_from_form(formdata, *, is_admin=False, config=LAB):
    options = profiles.options_from_form(formdata)
    profile = profiles.validate_options(config, options, is_admin=is_admin)
    return profile["slug"], profiles.resolve_overrides(profile, options)


# -- defaults -------------------------------------------------------------


def test_default_profiles():
    pristine = copy.deepcopy(profiles.DEFAULT_PROFILES)
    by_slug = {p["slug"]: p for p in profiles.normalize_profiles(profiles.DEFAULT_PROFILES)}
    assert list(by_slug) == ["cpu", "gpu-1", "gpu-2", "gpu-all"]
    assert [p["spawner_override"]["gpus"] for p in by_slug.values()] == [0, 1, 2, "all"]
    assert by_slug["cpu"]["default"] and not by_slug["gpu-1"]["default"]
    assert [s for s, p in by_slug.items() if p["admin_only"]] == ["gpu-all"]
    assert by_slug["gpu-1"]["spawner_override"]["shm_size"] == "2G"
    for slug in ("cpu", "gpu-1", "gpu-2"):
        limits = {"gpus", "mem_limit", "cpu_limit", "shm_size"}
        assert set(by_slug[slug]["spawner_override"]) == limits
    settings = profiles.resolve_overrides(profiles.validate_options(profiles.DEFAULT_PROFILES, {}, is_admin=False), {})
    assert settings["gpus"] == 0 and settings["gpu_shared"] is False
    profiles.render_form(profiles.DEFAULT_PROFILES, is_admin=True)
    assert profiles.DEFAULT_PROFILES == pristine


# -- the form -------------------------------------------------------------


def test_form_chain_keeps_only_the_selected_profiles_options(lab):
    form = {
        "profile": ["duo"],
        "profile-option-duo--image": ["jax"],
        "profile-option-duo--size": ["one"],
        "profile-option-small--image": ["ignored"],  # belongs to a profile not picked
    }
    assert profiles.options_from_form(form) == {"profile": "duo", "image": "jax", "size": "one"}
    slug, settings = chain_from_form(form)
    assert slug == "duo"
    assert settings == {
        "gpus": 1,
        "gpu_shared": False,
        "shm_size": "4G",
        "extra_host_config": {"b": 2},
        "image": "lab/jax:1",
    }


def test_unknown_form_fields_are_reported():
    with pytest.raises(ProfileError, match=r"Unknown form field\(s\): 'evil', 'gpus_file'"):
        profiles.options_from_form({"profile": ["duo"], "evil": ["1"], "gpus_file": [b""]})
    with pytest.raises(ProfileError, match="Pick one profile"):
        profiles.options_from_form({"profile": ["duo", "small"]})
    with pytest.raises(ProfileError, match="exactly one value"):
        profiles.options_from_form({"profile": ["duo"], "profile-option-duo--size": ["one", "two"]})


def test_an_unknown_option_of_the_selected_profile_reaches_validation(lab):
    with pytest.raises(ProfileError, match=r"Unknown option\(s\) 'colour' for profile 'duo'"):
        chain_from_form({"profile": ["duo"], "profile-option-duo--colour": ["red"]})


def test_empty_form_and_xsrf_give_the_default_profile(lab):
    assert profiles.options_from_form({"_xsrf": ["token"]}) == {}
    assert chain_from_form({}) == (
        "small",
        {"gpus": 0, "gpu_shared": False, "mem_limit": "4G", "extra_host_config": {"a": 1}},
    )


# -- REST user_options ----------------------------------------------------


def test_rest_options_with_default_choices_and_a_gpu_count(lab):
    profile = profiles.validate_options(lab, {"profile": "duo", "gpus": 1}, is_admin=False)
    settings = profiles.resolve_overrides(profile, {"profile": "duo", "gpus": 1})
    assert settings["gpus"] == 1 and settings["image"] == "lab/torch:1"
    profile = profiles.validate_options(lab, {"profile": "duo", "gpus": 0}, is_admin=False)
    assert profiles.resolve_overrides(profile, {"gpus": 0})["gpus"] == 0


@pytest.mark.parametrize("gpus", [True, False, "1", 1.0, -1, None, [1]])
def test_gpu_count_must_be_a_non_negative_int(lab, gpus):
    expected = f"gpus must be a non-negative integer, got {re.escape(repr(gpus))}"
    with pytest.raises(ProfileError, match=expected):
        profiles.validate_options(lab, {"profile": "duo", "gpus": gpus}, is_admin=False)


def test_gpu_count_above_the_profile_is_refused(lab):
    with pytest.raises(ProfileError, match="gpus=3 is above the 2 of 'duo'"):
        profiles.validate_options(lab, {"profile": "duo", "gpus": 3}, is_admin=True)
    # the ceiling follows the chosen option
    with pytest.raises(ProfileError, match="gpus=2 is above the 1 of 'duo'"):
        profiles.validate_options(lab, {"profile": "duo", "size": "one", "gpus": 2}, is_admin=False)
    with pytest.raises(ProfileError, match="gpus=1 is above the 0 of 'small'"):
        profiles.validate_options(lab, {"gpus": 1}, is_admin=False)
    # "all" is checked later, against the inventory
    profile = profiles.validate_options(lab, {"profile": "box", "gpus": 7}, is_admin=True)
    assert profile["slug"] == "box"


def test_unknown_slug_lists_only_profiles_the_user_may_pick(lab):
    with pytest.raises(ProfileError) as err:
        profiles.validate_options(lab, {"profile": "huge"}, is_admin=False)
    assert str(err.value) == "Unknown profile 'huge'; available: small, duo"
    with pytest.raises(ProfileError, match="available: small, duo, box"):
        profiles.validate_options(lab, {"profile": "huge"}, is_admin=True)


def test_admin_only_profile(lab):
    with pytest.raises(ProfileError, match="Profile 'box' is for admins only"):
        profiles.validate_options(lab, {"profile": "box"}, is_admin=False)
    profile = profiles.validate_options(lab, {"profile": "box"}, is_admin=True)
    assert profiles.resolve_overrides(profile, {"profile": "box"})["gpus"] == "all"


def test_admin_only_default_falls_back_to_the_first_visible_profile():
    config = [dict(LAB[2], default=True), LAB[1]]
    assert profiles.validate_options(config, {}, is_admin=False)["slug"] == "duo"
    assert profiles.validate_options(config, {}, is_admin=True)["slug"] == "box"
    with pytest.raises(ProfileError, match="No profile is available"):
        profiles.validate_options([LAB[2]], {}, is_admin=False)


def test_unknown_keys_and_choices_not_offered(lab):
    expected = "'mem_limit' for profile 'small'; allowed: profile, gpus"
    with pytest.raises(ProfileError, match=expected):
        profiles.validate_options(lab, {"mem_limit": "1T"}, is_admin=False)
    expected = "'tensorflow' is not offered for option 'image' of profile 'duo'; choices: torch"
    with pytest.raises(ProfileError, match=expected):
        profiles.validate_options(lab, {"profile": "duo", "image": "tensorflow"}, is_admin=False)
    with pytest.raises(ProfileError, match="3 is not offered"):
        profiles.validate_options(lab, {"profile": "duo", "size": 3}, is_admin=False)
    with pytest.raises(ProfileError, match="must be a mapping"):
        profiles.validate_options(lab, ["duo"], is_admin=False)


def test_returned_profiles_and_settings_are_copies(lab):
    before = copy.deepcopy(lab)
    profile = profiles.validate_options(lab, {"profile": "duo"}, is_admin=False)
    profile["spawner_override"]["gpus"] = 99
    settings = profiles.resolve_overrides(profile, {})
    settings["extra_host_config"]["b"] = "changed"
    profiles.render_form(lab, is_admin=True)
    profiles.normalize_profiles(lab)[0]["slug"] = "x"
    profiles.options_from_form({"profile": ["duo"]})
    assert lab == before
    again = profiles.validate_options(lab, {"profile": "duo"}, is_admin=False)
    assert again["spawner_override"]["gpus"] == 2


# -- configuration --------------------------------------------------------


def test_kubespawner_profiles_load():
    kube = [
        {"display_name": "GPU Node", "kubespawner_override": {
            "image": "lab/cuda:12", "extra_resource_limits": {"nvidia.com/gpu": "1"}}},
    ]  # fmt: skip
    profile = profiles.normalize_profiles(kube)[0]
    assert profile["slug"] == "gpu-node" and "kubespawner_override" not in profile
    # the GPU limit becomes gpus; nothing is left that names no setting of this spawner
    assert profile["spawner_override"] == {"image": "lab/cuda:12", "gpus": 1}
    kube[0]["kubespawner_override"]["extra_resource_limits"]["example.com/fpga"] = "1"
    override = profiles.normalize_profiles(kube)[0]["spawner_override"]
    assert override["extra_resource_limits"] == {"example.com/fpga": "1"}  # for the spawner's check to refuse


def test_every_override_key_of_profiles_and_choices_is_checked_and_named_in_the_error():
    asked = []

    def check(key, value):
        asked.append((key, value))
        return "no environment here" if key == "environment" else None

    profiles.normalize_profiles(LAB, check)
    assert ("extra_host_config", {"a": 1}) in asked and ("image", "lab/jax:1") in asked
    bad = [dict(LAB[1], spawner_override={"gpus": 2, "environment": {"A": "1"}})]
    with pytest.raises(ProfileError, match=r"^Profile 'duo': no environment here$"):
        profiles.normalize_profiles(bad, check)
    choice = {"display_name": "x", "spawner_override": {"environment": {}}}
    in_choice = [dict(LAB[0], profile_options={"env": {"choices": {"plain": choice}}})]
    with pytest.raises(ProfileError, match=r"^Profile 'small' option 'env' choice 'plain': no environment here$"):
        profiles.normalize_profiles(in_choice, check)


def test_merge_copies_merges_mappings_and_drops_none_only_when_asked():
    base = {"env": {"A": "1", "B": "2"}, "dns": ["x"], "n": 1}
    merged = profiles.merge(base, {"env": {"B": None, "C": "3"}, "dns": ["y"], "extra": {"k": None}})
    assert merged == {"env": {"A": "1", "B": None, "C": "3"}, "dns": ["y"], "n": 1, "extra": {"k": None}}
    dropped = profiles.merge(base, {"env": {"B": None, "C": "3"}, "n": None, "extra": {"k": None}}, drop_none=True)
    assert dropped == {"env": {"A": "1", "C": "3"}, "dns": ["x"], "extra": {}}
    merged["env"]["A"] = dropped["dns"][0] = "changed"
    assert base == {"env": {"A": "1", "B": "2"}, "dns": ["x"], "n": 1}


def test_none_in_a_choice_survives_resolution_so_that_applying_it_removes_the_key(lab):
    config = [dict(LAB[0], profile_options={"env": {"choices": {
        "quiet": {"spawner_override": {"extra_host_config": {"a": None}}}}}})]  # fmt: skip
    profile = profiles.validate_options(config, {}, is_admin=False)
    assert profiles.resolve_overrides(profile, {})["extra_host_config"] == {"a": None}


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "non-empty list"),
        ([LAB[0], LAB[0]], "duplicate slugs"),
        ([LAB[0], dict(LAB[1], default=True)], "more than one profile has default"),
        ([{"slug": "x"}], "needs a display_name"),
        ([{"display_name": "X", "slug": "a b"}], "'a b' is not a valid slug"),
        ([{"display_name": "X", "spawner_override": {"gpus": -1}}], "gpus=-1 must be"),
        ([{"display_name": "X", "spawner_override": {"gpus": True}}], "gpus=True must be"),
        ([{"display_name": "X", "spawner_override": {"mem_limit": "lots"}}], "mem_limit='lots'"),
        ([{"display_name": "X", "spawner_override": {"cpu_limit": 0}}], "cpu_limit=0"),
        ([{"display_name": "X", "spawner_override": {"gpu_shared": "yes"}}], "gpu_shared='yes'"),
        ([{"display_name": "X", "spawner_override": {}, "kubespawner_override": {}}], "not both"),
        ([{"display_name": "X", "profile_options": {"gpus": IMAGE_OPTION}}], "reserved"),
        ([{"display_name": "X", "profile_options": {"o": {"choices": {}}}}], "needs choices"),
    ],
)
def test_bad_configuration_is_refused_clearly(bad, message):
    with pytest.raises(ProfileError, match=re.escape(message)):
        profiles.normalize_profiles(bad)


def test_resolve_gpu_count():
    assert profiles.resolve_gpu_count("all", 4) == 4
    assert profiles.resolve_gpu_count(2, 4) == 2
    assert profiles.resolve_gpu_count(0, 0) == 0
    with pytest.raises(ProfileError, match="asks for 3 GPUs, but this server has 2"):
        profiles.resolve_gpu_count(3, 2)
    with pytest.raises(ProfileError, match="has none"):
        profiles.resolve_gpu_count("all", 0)
    with pytest.raises(ProfileError, match="got '2'"):
        profiles.resolve_gpu_count("2", 4)


# -- HTML -----------------------------------------------------------------


def test_form_hides_admin_only_profiles_and_uses_kubespawner_field_names(lab):
    html = profiles.render_form(lab, is_admin=False)
    assert 'value="box"' not in html and "Whole box" not in html
    assert re.search(r'name="profile" id="profile-item-small" value="small" checked', html)
    assert 'name="profile-option-duo--image"' in html
    assert '<option value="torch" selected>PyTorch</option>' in html
    assert '<option value="jax">JAX</option>' in html
    assert 'value="box"' in profiles.render_form(lab, is_admin=True)


def test_form_escapes_text():
    evil = [{
        "display_name": "<script>alert(1)</script>",
        "slug": "evil",
        "description": 'say "hi" & <b>bye</b>',
        "profile_options": {"opt": {"display_name": "<i>", "choices": {
            "c": {"display_name": "</option><script>"}}}},
    }]  # fmt: skip
    html = profiles.render_form(evil, is_admin=False)
    assert "<script>" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "say &quot;hi&quot; &amp; &lt;b&gt;bye&lt;/b&gt;" in html
    assert "&lt;/option&gt;&lt;script&gt;" in html


def test_what_the_form_submits_by_default_passes_the_chain(lab):
    html = profiles.render_form(lab, is_admin=False)
    form = {"profile": [re.search(r'value="([^"]+)" checked', html).group(1)]}
    selects = r'<select [^>]*name="([^"]+)".*?<option value="([^"]+)" selected'
    for name, value in re.findall(selects, html, re.S):
        form[name] = [value]
    assert set(form) == {"profile", "profile-option-duo--image", "profile-option-duo--size"}
    assert chain_from_form(form)[0] == "small"
    form["profile"] = ["duo"]
    assert chain_from_form(form)[1]["gpus"] == 2


def test_user_input_in_errors_is_cut_short(lab):
    with pytest.raises(ProfileError) as error:
        profiles.validate_options(lab, {"profile": "p" * 100_000, **{f"k{i}": 1 for i in range(50)}}, is_admin=False)
    assert len(str(error.value)) < 300 and "…" in str(error.value)
