import re

import pytest

from spawner.names import safe_slug

DOCKER_NAME = re.compile(r"^[a-z0-9-]+$")
NAMES = [
    "alice", "Alice", "a.b", "a-2eb", "a-b", "王小明", "zoë.o'neil",
    "x" * 300, "x" * 301, "a" * 40, "a" * 41, "$(rm -rf /)", "a b",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_slug_is_docker_and_dns_safe(name):
    slug = safe_slug(name)
    assert DOCKER_NAME.match(slug)
    assert len(slug) <= 40


def test_slugs_never_collide():
    slugs = [safe_slug(n) for n in NAMES]
    assert len(set(slugs)) == len(NAMES)


def test_short_names_stay_readable():
    assert safe_slug("alice") == "alice"
    assert safe_slug("a.b") == "a-2eb"


def test_long_names_share_a_head_but_not_a_slug():
    a, b = safe_slug("x" * 100 + "a"), safe_slug("x" * 100 + "b")
    assert a != b and a.split("--")[0] == b.split("--")[0]


def test_truncation_never_cuts_an_escape():
    slug = safe_slug("王" * 30)
    head = slug.split("--")[0]
    assert re.fullmatch(r"(-[0-9a-f]{2})+", head)


def test_empty_server_name_stays_empty():
    assert safe_slug("") == ""
