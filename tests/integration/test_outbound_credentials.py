"""Outbound tokens from each credential the bot can have: the user-assigned managed identity
(Container Apps' IDENTITY_ENDPOINT / IDENTITY_HEADER) and a certificate; Bot Connector and
Graph calls carry them (the client secret: tests/integration/test_teams_graph.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.teams.credentials import outbound_tokens
from bot.teams.tokens import ManagedIdentityTokenProvider, TokenError
from tests.builders import catalog
from tests.integration.test_teams_graph import accept_task
from tests.standins import FakeMonotonicClock
from tests.standins.graph import GraphStandin, TokenStandin
from tests.standins.identity import IdentityStandin
from tests.support.certificates import pem, self_signed
from tests.support.waiting import eventually
from tests.support.world import running_world

IDENTITY_CLIENT_ID = "aaaaaaaa-1111-2222-3333-444444444444"
APP_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "tenant-1"


async def test_a_managed_identity_signs_bot_connector_and_graph_calls(tmp_path: Path) -> None:
    async with IdentityStandin(client_id=IDENTITY_CLIENT_ID) as identity, \
            GraphStandin(catalog={IDENTITY_CLIENT_ID: "catalog-app-1"}) as graph, \
            running_world(
                catalog({"id": "sales", "name": "Sales"}), tmp_path,
                app_id=IDENTITY_CLIENT_ID, app_type="UserAssignedMSI", tenant_id=TENANT,
                identity_endpoint=identity.endpoint, identity_header=identity.header,
                graph_url=graph.base_url, service_url_hosts=("127.0.0.1",),
                app_options={"authenticate_inbound": False}) as world:
        agent = world.agent(1)
        await agent.register()
        await accept_task(world, agent, "Jane Doe")
        await eventually(lambda: graph.chat_requests)
        await eventually(lambda: graph.installed_apps)
        connector_auth = set(world.connector.authorizations)
        graph_auth = set(graph.authorizations)
    [bot_token] = [t for t in identity.issued if t.startswith("mi-api.botframework.com-")]
    [graph_token] = [t for t in identity.issued if t.startswith("mi-graph.microsoft.com-")]
    assert connector_auth == {f"Bearer {bot_token}"}
    assert graph_auth == {f"Bearer {graph_token}"}
    assert sorted(r["resource"] for r in identity.requests) == [
        "https://api.botframework.com", "https://graph.microsoft.com"]  # one each: kept
    assert {r["client_id"] for r in identity.requests} == {IDENTITY_CLIENT_ID}


async def test_a_certificate_signs_the_token_request(tmp_path: Path) -> None:
    key, cert = self_signed()
    async with TokenStandin(certificates={APP_ID: cert}) as tokens, running_world(
            catalog({"id": "sales"}), tmp_path, app_id=APP_ID, app_certificate=pem(key, cert),
            authority=tokens.authority_host, service_url_hosts=("127.0.0.1",),
            app_options={"authenticate_inbound": False,
                         "msal_http_client": tokens.http_client()}) as world:
        await world.agent(1).register()
        authorizations = set(world.connector.authorizations)
    assert authorizations == {"Bearer standin-token-1"}
    [request] = tokens.token_requests
    assert "client_secret" not in request and request["client_assertion"]


async def test_a_certificate_the_token_endpoint_does_not_know_gets_no_token() -> None:
    key, cert = self_signed()
    _, registered = self_signed()
    settings = Settings(app_id=APP_ID, app_certificate=pem(key, cert))
    async with TokenStandin(certificates={APP_ID: registered}) as tokens, \
            aiohttp.ClientSession() as session:
        settings = replace(settings, authority=tokens.authority_host)
        provider = outbound_tokens(settings, session, {"http_client": tokens.http_client(),
                                                      "instance_discovery": False}).bot_connector
        assert provider is not None
        with pytest.raises(TokenError) as caught:
            await provider.get_token()
    assert caught.value.error == "invalid_client"


@pytest.fixture
async def identity() -> AsyncIterator[IdentityStandin]:
    async with IdentityStandin(client_id=IDENTITY_CLIENT_ID, expires_in=3600) as standin:
        yield standin


async def test_the_identity_token_is_kept_until_shortly_before_it_expires(
        identity: IdentityStandin) -> None:
    clock = FakeMonotonicClock()
    async with aiohttp.ClientSession() as session:
        provider = ManagedIdentityTokenProvider(
            session, endpoint=identity.endpoint, header=identity.header,
            client_id=IDENTITY_CLIENT_ID, resource="https://api.botframework.com",
            clock=clock, refresh_margin=300)
        first = await provider.get_token()
        assert await provider.get_token() == first and len(identity.requests) == 1
        await clock.advance(3300 - 5)
        assert await provider.get_token() == first
        await clock.advance(10)
        assert await provider.get_token() != first and len(identity.requests) == 2


@pytest.mark.parametrize("header, client_id, error", [
    ("wrong-header", IDENTITY_CLIENT_ID, "HTTP 401"),
    ("identity-header-secret", "another-identity", "invalid_request"),
])
async def test_a_refused_identity_request_is_a_token_error(
        identity: IdentityStandin, header: str, client_id: str, error: str) -> None:
    async with aiohttp.ClientSession() as session:
        provider = ManagedIdentityTokenProvider(
            session, endpoint=identity.endpoint, header=header, client_id=client_id,
            resource="https://graph.microsoft.com")
        with pytest.raises(TokenError) as caught:
            await provider.get_token()
    assert caught.value.error == error
