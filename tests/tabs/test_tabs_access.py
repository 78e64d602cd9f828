"""Who may read the tabs' JSON: with MicrosoftAppId, a valid Teams SSO token of a registered
agent (that agent's sessions only); no token, a bad token, the local-mode sign-in: 401 with a
sentence (or a small page), never data; signed in but not an agent: 403. In local mode the dev
sign-in stands in, behind a visible banner; Bearer tokens mean nothing there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.services.lifecycle import terminate
from bot.services.offers import accept
from tests.builders import catalog
from tests.responsiveness import healthz_delays
from tests.scenario import add_agent, new_task, ringing
from tests.support.world import World, running_world
from tests.tabs.client import get
from tests.tabs.entra_standin import APP_ID, HOST, TENANT, EntraKeys, unsigned

SERVICES = catalog({"id": "sales", "name": "Sales", "codes": {"primary": ["Sale", "No sale"]}})


async def scene(world: World) -> str:
    """Agent 1 (a1@example.com) took one chat from Jane Doe and ended it."""
    agent = await add_agent(world.engine, 1)
    await add_agent(world.engine, 2)
    task = await new_task(world.engine, name="Jane Doe")
    [offer] = await ringing(world.engine, task.id)
    await world.engine.run(accept, offer.id, offer.agent_id)
    world.clock.advance(30)
    await world.engine.run(terminate, offer.id, agent_id=offer.agent_id)
    assert offer.agent_id == agent
    return offer.id


@pytest.fixture
async def teams(tmp_path: Path, entra: EntraKeys) -> AsyncIterator[World]:
    async with running_world(SERVICES, tmp_path, app_id=APP_ID, public_host=HOST,
                             tenant_id=TENANT, authority=entra.authority) as world:
        yield world


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(SERVICES, tmp_path) as world:
        yield world


async def test_a_valid_token_shows_the_agents_own_sessions(teams: World,
                                                           entra: EntraKeys) -> None:
    session_id = await scene(teams)
    status, _, body = await get(teams, "/tabs/api/sessions", f"Bearer {entra.token()}")
    assert status == 200
    [entry] = body["entries"]
    assert entry["id"] == session_id and entry["customer"] == "Jane Doe"
    assert entry["state_label"] == "After-call work" and entry["talked"] == "30 seconds"
    # Agent 2 is signed in as themselves (by object id here): none of agent 1's sessions.
    other = entra.token(upn=None, oid="00000000-0000-0000-0000-000000000002")
    status, _, body = await get(teams, "/tabs/api/sessions", f"Bearer {other}")
    assert status == 403  # agent 2 registered by UPN only: the object id names nobody
    status, _, body = await get(teams, "/tabs/api/sessions",
                                f"Bearer {entra.token(upn='a2@example.com', oid='x')}")
    assert (status, body["entries"]) == (200, [])
    status, _, _ = await get(teams, f"/tabs/api/sessions/{session_id}",
                             f"Bearer {entra.token(upn='a2@example.com', oid='x')}")
    assert status == 404


@pytest.mark.parametrize("kind", ["none", "garbage", "wrong audience", "wrong issuer",
                                  "expired", "alg none", "local sign-in"])
async def test_without_a_valid_token_nothing_is_shown(teams: World, entra: EntraKeys,
                                                       kind: str) -> None:
    await scene(teams)
    authorization = {
        "none": None,
        "garbage": "Bearer x.y.z",
        "wrong audience": f"Bearer {entra.token(aud='api://elsewhere/' + APP_ID)}",
        "wrong issuer": f"Bearer {entra.token(iss='https://sts.windows.net/other/')}",
        "expired": f"Bearer {entra.token(exp=1_000_000_000, iat=999_000_000, nbf=1)}",
        "alg none": f"Bearer {unsigned(entra.claims(), entra.kid)}",
        "local sign-in": "Local a1@example.com",
    }[kind]
    for path in ("/tabs/api/sessions", "/tabs/api/me", "/tabs/api/sessions/filters"):
        status, text, body = await get(teams, path, authorization)
        assert status == 401
        assert set(body) == {"error"} and "Jane" not in text
        assert "Teams" in body["error"]
    # Someone who opens the address in a browser gets a page that says so.
    status, text, _ = await get(teams, "/tabs/api/sessions", authorization,
                                accept_type="text/html,*/*")
    assert status == 401 and text.startswith("<!doctype html>") and "Jane" not in text


async def test_a_signed_in_user_who_is_no_agent_gets_403(teams: World,
                                                         entra: EntraKeys) -> None:
    await scene(teams)
    stranger = entra.token(upn="someone@example.com", oid="00000000-0000-0000-0000-0000000000ff",
                           name="Some One")
    for path in ("/tabs/api/sessions", "/tabs/api/sessions/filters"):
        status, text, body = await get(teams, path, f"Bearer {stranger}")
        assert status == 403 and "register" in body["error"] and "Jane" not in text
    # Who they are is theirs to see (a page that is not only for agents starts from it).
    status, _, body = await get(teams, "/tabs/api/me", f"Bearer {stranger}")
    assert (status, body) == (200, {"name": "Some One", "upn": "someone@example.com",
                                    "local_mode": False, "agent": None})
    status, _, body = await get(teams, "/tabs/api/me", f"Bearer {entra.token()}")
    assert body["agent"] == {"name": "Agent 1", "services": ["sales"]}


async def test_with_an_app_id_there_is_no_dev_sign_in(teams: World) -> None:
    status, _, _ = await get(teams, "/tabs/api/local/members")
    assert status == 404
    status, page, _ = await get(teams, "/tabs/sessions", accept_type="text/html")
    assert status == 200 and 'data-mode="teams"' in page and "Local mode" not in page


async def test_local_mode_signs_in_a_member_of_the_services_file(local: World) -> None:
    session_id = await scene(local)
    status, page, _ = await get(local, "/tabs/sessions", accept_type="text/html")
    assert status == 200 and 'data-mode="local"' in page and "Local mode" in page
    status, _, body = await get(local, "/tabs/api/local/members")
    assert body["members"][:2] == ["a1@example.com", "a2@example.com"]
    status, _, body = await get(local, "/tabs/api/sessions", "Local A1@example.com")
    assert status == 200 and [e["id"] for e in body["entries"]] == [session_id]
    for authorization in (None, "Local nobody@example.com", "Bearer x.y.z"):
        status, text, body = await get(local, "/tabs/api/sessions", authorization)
        assert status == 401 and "Jane" not in text and "local-mode sign-in" in body["error"]


async def test_the_pages_may_be_framed_by_teams_only(local: World) -> None:
    async with local.client.get(local.server.make_url("/tabs/sessions")) as reply:
        policy = reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://teams.microsoft.com" in policy
    assert "script-src 'self';" in policy


@pytest.mark.parametrize(("path", "status"), [
    ("/tabs/static/tabs.js", 200), ("/tabs/static/tabs.css", 200),
    ("/tabs/static/vendor/MicrosoftTeams.min.js", 200),
    ("/tabs/static/sessions.html", 404),  # pages go through /tabs/<page>, with their mode
    ("/tabs/static/..%2Fsite.py", 404), ("/tabs/static/vendor/..%2F..%2Fsite.py", 404),
    ("/tabs/static/nothing.js", 404),
])
async def test_static_files_are_the_tabs_own_only(local: World, path: str, status: int) -> None:
    async with local.client.get(str(local.server.make_url("")).rstrip("/") + path) as reply:
        assert reply.status == status
        if status == 200:
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
            assert reply.content_type in ("application/javascript", "text/css")


async def test_a_slow_key_endpoint_holds_up_nothing_else(teams: World, entra: EntraKeys) -> None:
    """Signing keys are fetched with aiohttp (a timeout, no thread): while the fetch stalls,
    every other request is answered, and the waiting token requests share one fetch."""
    await scene(teams)
    entra.stall = 1.0
    waiting = [asyncio.create_task(get(teams, "/tabs/api/sessions", f"Bearer {entra.token()}"))
               for _ in range(3)]
    await asyncio.sleep(0.2)
    async with healthz_delays(teams.client, teams.server.make_url("/healthz")) as delays:
        await asyncio.sleep(0.5)
    assert delays and max(delays) < 0.1, f"/healthz took {max(delays) * 1000:.0f} ms"
    assert [status for status, _, _ in await asyncio.gather(*waiting)] == [200, 200, 200]
    assert entra.metadata_fetches == 1
