"""Servers boot in turns (issue 13, login storm): with start_concurrency 1, three users
who press "Start" together all get a server, the later ones are told how many are
ahead, and no container starts before the previous server listens. A server that
never answers (a hostile or broken one) holds up the next for HOLD_LIMIT only."""

import asyncio
from datetime import timedelta

import pytest

from spawner import startqueue
from spawner.leases import parse_time

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# The server logs this line once it listens; our port check then hands the slot on.
LISTENING = "is running at"
# Docker stamps a log line when it reads it; the port accepts a little before the line.
SLACK = timedelta(seconds=0.3)


async def start_together(engine, users) -> list[str]:
    """Start the users' servers at once (the hub API helper of the tests sends one
    request at a time); the ids of their containers."""
    await asyncio.gather(*(user.spawn() for user in users))
    assert all(user.spawner.ready for user in users)
    return [user.spawner.object_id for user in users]


def started_and_listening(engine, container_id: str):
    container = engine.containers.get(container_id)
    started = parse_time(container.attrs["State"]["StartedAt"])
    lines = container.logs(timestamps=True).decode(errors="replace").splitlines()
    listening = next(parse_time(line.split(" ", 1)[0]) for line in lines if LISTENING in line)
    return started, listening


async def test_servers_started_together_boot_one_after_another(hub, engine, spawner_config, make_user):
    spawner_config.start_concurrency = 1
    users = [make_user() for _ in range(3)]
    ids = await start_together(engine, users)

    waits = sorted(e["message"] for user in users for e in user.spawner.spawn_events if "your turn" in e["message"])
    assert waits == [
        "Waiting for your turn: 1 server is starting ahead of yours (at most 1 at once)",
        "Waiting for your turn: 2 servers are starting ahead of yours (at most 1 at once)",
    ], [user.spawner.spawn_events for user in users]

    boots = sorted(started_and_listening(engine, container) for container in ids)
    for (_, listening), (next_started, _) in zip(boots, boots[1:], strict=False):
        assert next_started >= listening - SLACK, f"a container started while the one before still booted: {boots}"


async def test_without_a_limit_servers_boot_at_once(hub, engine, spawner_config, make_user):
    spawner_config.start_concurrency = 0
    users = [make_user() for _ in range(2)]
    ids = await start_together(engine, users)
    assert not [e for user in users for e in user.spawner.spawn_events if "your turn" in e["message"]]
    (first_started, first_listening), (second_started, _) = sorted(
        started_and_listening(engine, container) for container in ids
    )
    assert second_started < first_listening, "with no limit, the second container starts during the first boot"


async def test_a_server_that_never_answers_holds_up_the_next_only_for_the_hold_limit(
    engine, spawner_config, make_user, monkeypatch
):
    monkeypatch.setattr(startqueue, "HOLD_LIMIT", 2.0)
    spawner_config.start_concurrency = 1
    spawner_config.http_timeout = 10
    spawner_config.cmd = ["bash", "-c", "sleep 600"]  # runs, never listens
    hung = make_user()
    assert hung.spawner.cmd[0] == "bash"  # made now, with this command
    del spawner_config.cmd
    user = make_user()
    assert user.spawner.cmd != hung.spawner.cmd

    hanging = asyncio.create_task(hung.spawn())
    await asyncio.sleep(0.5)  # the hung server has taken the slot
    await user.spawn()
    assert user.spawner.ready and not hanging.done()
    hung_started = parse_time(engine.api.inspect_container(hung.spawner.object_id)["State"]["StartedAt"])
    started = parse_time(engine.api.inspect_container(user.spawner.object_id)["State"]["StartedAt"])
    waited = started - hung_started
    assert waited >= timedelta(seconds=startqueue.HOLD_LIMIT) - SLACK, f"did not wait its turn: {waited}"
    assert waited < timedelta(seconds=8), f"waited for the hung server's 10 s timeout, not the hold limit: {waited}"

    with pytest.raises(TimeoutError):
        await hanging
