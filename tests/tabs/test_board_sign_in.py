"""The board's API behind the tabs' sign-in: a Teams SSO token of a supervisor (who need not
be an agent) reads it; no token, a bad token or the local-mode sign-in with an app id: 401;
signed in but supervising nothing: 403; never data. In local mode, the dev sign-in offers
supervisors too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.builders import catalog
from tests.scenario import new_task
from tests.support.world import World, running_world
from tests.tabs.client import get
from tests.tabs.entra_standin import APP_ID, HOST, TENANT, EntraKeys, unsigned

BOSS_OID = "00000000-0000-0000-0000-0000000000b5"
SERVICES = catalog({"id": "sales", "name": "Sales",
                    "supervisors": ["boss@example.com", BOSS_OID]})
BOARD = "/api/board/v1"


@pytest.fixture
async def teams(tmp_path: Path, entra: EntraKeys) -> AsyncIterator[World]:
    async with running_world(SERVICES, tmp_path, app_id=APP_ID, public_host=HOST,
                             tenant_id=TENANT, authority=entra.authority) as world:
        yield world


async def test_a_supervisors_token_reads_the_board(teams: World, entra: EntraKeys) -> None:
    await new_task(teams.engine, name="Jane Doe")
    for token in (entra.token(upn="boss@example.com", oid="x"),
                  entra.token(upn=None, oid=BOSS_OID)):
        status, _, body = await get(teams, BOARD, f"Bearer {token}")
        assert status == 200
        [sales] = body["services"]
        assert [q["customer"] for q in sales["queue"]] == ["Jane Doe"]


@pytest.mark.parametrize("kind", ["none", "garbage", "wrong audience", "expired", "alg none",
                                  "local sign-in"])
async def test_without_a_valid_token_the_board_shows_nothing(teams: World, entra: EntraKeys,
                                                             kind: str) -> None:
    await new_task(teams.engine, name="Jane Doe")
    boss = {"upn": "boss@example.com"}
    authorization = {
        "none": None,
        "garbage": "Bearer x.y.z",
        "wrong audience": f"Bearer {entra.token(aud='api://elsewhere/' + APP_ID, **boss)}",
        "expired": f"Bearer {entra.token(exp=1_000_000_000, iat=999_000_000, nbf=1, **boss)}",
        "alg none": f"Bearer {unsigned(entra.claims(**boss), entra.kid)}",
        "local sign-in": "Local boss@example.com",
    }[kind]
    for path in (BOARD, f"{BOARD}/stream"):
        status, text, body = await get(teams, path, authorization)
        assert status == 401 and set(body) == {"error"} and "Jane" not in text
    # A person who opens the address in a browser gets a small page that says so.
    status, text, _ = await get(teams, BOARD, authorization, accept_type="text/html")
    assert status == 401 and text.startswith("<!doctype html>") and "Jane" not in text


async def test_an_agent_who_supervises_nothing_gets_403(teams: World, entra: EntraKeys) -> None:
    await new_task(teams.engine, name="Jane Doe")
    status, text, body = await get(teams, BOARD, f"Bearer {entra.token()}")  # agent 1
    assert (status, body) == (403, {"error": "You do not supervise any service."})
    assert "Jane" not in text
    status, _, body = await get(teams, f"{BOARD}/stream", f"Bearer {entra.token()}")
    assert status == 403


async def test_local_mode_offers_supervisors_to_sign_in_as(tmp_path: Path) -> None:
    async with running_world(SERVICES, tmp_path) as world:
        status, _, body = await get(world, "/tabs/api/local/members", None)
        assert status == 200 and body["members"][-2:] == ["boss@example.com", BOSS_OID]
        status, _, body = await get(world, BOARD, "Local BOSS@example.com")
        assert status == 200 and [s["id"] for s in body["services"]] == ["sales"]
        status, _, body = await get(world, BOARD, "Local a1@example.com")
        assert status == 403
        status, page, _ = await get(world, "/tabs/board", None, accept_type="text/html")
        assert status == 200 and 'data-mode="local"' in page and "Local mode" in page
