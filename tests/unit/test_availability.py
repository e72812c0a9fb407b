"""What the spawn page offers (spawner/availability.py): free GPUs, quota, groups, and
the form's disabled profiles with their reason. No Docker, no hub."""

import re
from datetime import datetime, timezone

import pytest

from spawner import availability, leases, profiles
from spawner.profiles import ProfileError

GPUS = ["0", "1", "2", "3"]
NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
PROFILES = [
    *profiles.DEFAULT_PROFILES,
    {"display_name": "Big jobs", "slug": "big", "allowed_groups": ["bigjobs", "staff"],
     "spawner_override": {"gpus": 1}},
    {"display_name": "Shared GPU", "slug": "shared", "spawner_override": {"gpus": 1, "gpu_shared": True}},
]  # fmt: skip


def lease(user: str, *gpus: str, shared: bool = False) -> leases.Lease:
    return leases.Lease(user, gpus, NOW, shared, f"c-{user}")


def pool(held=(), ids=GPUS, quota=1, group_quotas=None, groups=()) -> availability.GpuPool:
    return availability.pool(ids, held, user_limit=quota, group_limits=group_quotas or {}, groups=groups)


def offered(gpus, groups=(), is_admin=False, **kw) -> dict[str, availability.Offer]:
    found = availability.offers(PROFILES, gpus, groups=groups, is_admin=is_admin, **kw)
    return {offer.slug: offer for offer in found}


def test_pool_counts_free_devices_for_exclusive_and_shared_leases_and_the_users_quota():
    gpus = pool([lease("a", "0"), lease("b", "1", shared=True)], group_quotas={"bigjobs": 2}, groups=["bigjobs"])
    assert gpus == availability.GpuPool(4, 2, 3, 2, "limit of group 'bigjobs'")


def test_each_gpu_profile_shows_free_gpus_and_quota_and_cpu_profiles_show_none():
    found = offered(pool([lease("a", "0")]))
    assert found["gpu-1"].note == "3 of 4 GPUs free; your limit: 1 GPU" and found["gpu-1"].reason is None
    assert found["cpu"].note == "" and found["cpu"].reason is None
    assert found["shared"].note == "3 of 4 GPUs free; your limit: 1 GPU"  # "0" is held exclusively


def test_over_quota_all_leased_and_not_in_group_are_the_reasons():
    found = offered(pool([lease(u, g) for u, g in zip("abc", "012", strict=True)]))
    assert found["gpu-2"].reason == "needs 2 GPUs, your per-user limit is 1"
    assert found["big"].reason == "only for members of bigjobs or staff"
    assert found["gpu-1"].reason is None
    full = offered(pool([lease(u, g) for u, g in zip("abcd", GPUS, strict=True)]))
    assert full["gpu-1"].reason == "all GPUs are leased" and full["cpu"].reason is None
    assert full["gpu-1"].note == "0 of 4 GPUs free; your limit: 1 GPU"


def test_a_shared_profile_may_use_devices_held_only_in_shared_mode():
    found = offered(pool([lease(u, g, shared=True) for u, g in zip("abcd", GPUS, strict=True)]))
    assert found["gpu-1"].reason == "all GPUs are leased" and found["shared"].reason is None


def test_fewer_free_than_wanted_says_how_many_are_free():
    gpus = pool([lease("a", "0"), lease("b", "1"), lease("c", "2")], quota=None)
    assert offered(gpus)["gpu-2"].reason == "needs 2 GPUs, 1 free"


def test_group_members_and_admins_may_pick_a_group_profile():
    assert offered(pool(), groups=["staff"])["big"].reason is None
    admin = offered(pool(), is_admin=True)
    assert admin["big"].reason is None and admin["gpu-2"].reason is None  # admins exceed quotas too
    assert admin["gpu-all"].note == "4 of 4 GPUs free; your limit: no limit"
    assert "gpu-all" not in offered(pool())  # admin-only stays hidden


def test_a_host_without_gpus_hides_gpu_profiles_unless_told_to_show_them_disabled():
    assert list(offered(pool(ids=[]))) == ["cpu"]
    assert list(offered(pool(ids=[]), is_admin=True)) == ["cpu"]
    shown = offered(pool(ids=[]), hide_gpu_profiles_without_gpus=False)
    assert list(shown) == ["cpu", "gpu-1", "gpu-2", "big", "shared"]
    assert {shown[s].reason for s in ("gpu-1", "gpu-2", "shared")} == {"no GPUs on this host"}
    assert shown["big"].reason == "only for members of bigjobs or staff"  # groups are said first


def test_a_profile_asking_more_than_the_host_has_says_so():
    assert offered(pool(ids=["0"], quota=None))["gpu-2"].reason == "needs 2 GPUs, this host has 1"


@pytest.mark.parametrize("bad", ["bigjobs", [""], [1], {"bigjobs": 1}])
def test_allowed_groups_must_be_a_list_of_names(bad):
    with pytest.raises(ProfileError, match="'x': allowed_groups must be a list of group names"):
        profiles.normalize_profiles([{"display_name": "X", "slug": "x", "allowed_groups": bad}])


def test_the_form_disables_what_cannot_start_says_why_and_checks_what_can():
    gpus = pool([lease(u, g) for u, g in zip("abcd", GPUS, strict=True)])
    html = profiles.render_form(
        PROFILES, is_admin=False, offers=availability.offers(PROFILES, gpus, groups=[], is_admin=False)
    )
    assert re.search(r'id="profile-item-cpu" value="cpu" checked>', html)
    assert re.search(r'id="profile-item-gpu-1" value="gpu-1" disabled>', html)
    assert "Cannot start now: all GPUs are leased" in html and "0 of 4 GPUs free; your limit: 1 GPU" in html
    assert "Cannot start now: only for members of bigjobs or staff" in html
    assert 'value="gpu-all"' not in html


def test_the_form_checks_the_first_startable_profile_when_the_default_cannot_start():
    lab = [{"display_name": "G", "slug": "g", "default": True, "spawner_override": {"gpus": 1}},
           {"display_name": "C", "slug": "c"}]  # fmt: skip
    gpus = pool([lease(u, g) for u, g in zip("abcd", GPUS, strict=True)])
    html = profiles.render_form(lab, is_admin=False, offers=availability.offers(lab, gpus, groups=[], is_admin=False))
    assert 'value="g" disabled>' in html and 'value="c" checked>' in html


def test_reasons_and_group_names_are_escaped_in_the_form():
    lab = [{"display_name": "X", "slug": "x", "allowed_groups": ["<b>ad</b>"]}]
    html = profiles.render_form(lab, is_admin=False, offers=availability.offers(lab, pool(), groups=[], is_admin=False))
    assert "<b>" not in html and "only for members of &lt;b&gt;ad&lt;/b&gt;" in html
