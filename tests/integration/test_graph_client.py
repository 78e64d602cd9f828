"""GraphClient against the Graph and token stand-ins over TCP: chats, catalog, install, MSAL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.domain.chatroom import chat_topic
from bot.teams.clock import MonotonicClock
from bot.teams.graph import GraphClient
from bot.teams.outbound import OutboundHTTPError, OutboundSender, RetryPolicy
from bot.teams.ratelimit import RateLimiter
from bot.teams.tokens import GRAPH_SCOPE, MsalTokenProvider, TokenError
from tests.standins.graph import GraphStandin, TokenStandin

CHAT_ID = re.compile(r"^19:[0-9a-f]{32}@thread\.v2$")


@dataclass
class Rig:
    standin: GraphStandin
    sender: OutboundSender
    graph: GraphClient


def make_sender() -> OutboundSender:
    clock = MonotonicClock()
    retry = RetryPolicy(backoff_base=0.01, backoff_cap=0.05)
    return OutboundSender(RateLimiter(clock), clock, retry=retry)


@pytest.fixture
async def rig(
    graph_standin: GraphStandin, http_session: aiohttp.ClientSession
) -> AsyncIterator[Rig]:
    sender = make_sender()
    yield Rig(
        graph_standin, sender, GraphClient(http_session, sender, base_url=graph_standin.base_url)
    )


def test_chat_topic() -> None:
    assert chat_topic("Sales", "Visitor 3") == "Sales ¦ Visitor 3"
    long_name = "N" * 300
    topic = chat_topic("IT Helpdesk", long_name)
    assert len(topic) == 249
    assert topic == ("IT Helpdesk ¦ " + long_name)[:249]


async def test_default_base_url_binds_to_graph(http_session: aiohttp.ClientSession) -> None:
    graph = GraphClient(http_session, make_sender())
    assert graph.base_url == "https://graph.microsoft.com/v1.0"
    assert graph.user_bind("aad-1") == "https://graph.microsoft.com/v1.0/users('aad-1')"


async def test_create_group_chat_sends_the_exact_body(rig: Rig) -> None:
    chat_id = await rig.graph.create_group_chat("Sales ¦ Visitor 1", ["aad-agent", "aad-owner"])
    assert CHAT_ID.match(chat_id)
    base = rig.standin.base_url
    assert rig.standin.chat_requests == [
        {
            "chatType": "group",
            "topic": "Sales ¦ Visitor 1",
            "members": [
                {
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": ["owner"],
                    "user@odata.bind": f"{base}/users('aad-agent')",
                },
                {
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": ["owner"],
                    "user@odata.bind": f"{base}/users('aad-owner')",
                },
            ],
        }
    ]
    assert chat_id in rig.standin.chats
    assert rig.standin.authorizations == [None]


async def test_topic_of_a_300_character_name_is_cut_to_249(rig: Rig) -> None:
    customer = "Customer " + "x" * 291
    assert len(customer) == 300
    await rig.graph.create_group_chat(chat_topic("Sales", customer), ["aad-agent"])
    await rig.graph.create_group_chat("T" * 300, ["aad-agent"])
    topics = [body["topic"] for body in rig.standin.chat_requests]
    assert [len(topic) for topic in topics] == [249, 249]
    assert topics[0].startswith("Sales ¦ Customer xxx")


async def test_find_catalog_app_and_install_it(rig: Rig) -> None:
    assert await rig.graph.find_catalog_app("switchboard") == "catalog-app-1"
    assert await rig.graph.find_catalog_app("someone-else") is None
    assert await rig.graph.find_catalog_app("it's") is None
    assert rig.standin.catalog_queries == [
        "externalId eq 'switchboard'",
        "externalId eq 'someone-else'",
        "externalId eq 'it''s'",
    ]

    chat_id = await rig.graph.create_group_chat("Sales ¦ Visitor 2", ["aad-agent"])
    await rig.graph.install_app_in_chat(chat_id, "catalog-app-1")
    assert rig.standin.installed_apps == [
        (
            chat_id,
            {
                "teamsApp@odata.bind":
                    f"{rig.standin.base_url}/appCatalogs/teamsApps/catalog-app-1",
                "consentedPermissionSet": {"resourceSpecificPermissions": [
                    {"permissionValue": "ChatMessage.Read.Chat",
                     "permissionType": "Application"},
                ]},
            },
        )
    ]
    with pytest.raises(OutboundHTTPError) as caught:
        await rig.graph.install_app_in_chat("19:missing@thread.v2", "catalog-app-1")
    assert caught.value.status == 404


async def test_chat_creation_500_is_reported_not_retried(rig: Rig) -> None:
    rig.standin.fail_chat_creation(500)
    with pytest.raises(OutboundHTTPError) as caught:
        await rig.graph.create_group_chat("Sales ¦ Visitor 4", ["aad-agent"])
    assert caught.value.status == 500
    assert len(rig.standin.chat_requests) == 1
    rig.standin.clear_failures()
    assert CHAT_ID.match(await rig.graph.create_group_chat("Sales ¦ Visitor 4", ["aad-agent"]))


async def test_chat_creation_503_is_retried(rig: Rig) -> None:
    rig.standin.fail_chat_creation(503, times=2)
    chat_id = await rig.graph.create_group_chat("Sales ¦ Visitor 5", ["aad-agent"])
    assert CHAT_ID.match(chat_id)
    assert len(rig.standin.chat_requests) == 3
    assert rig.sender.stats.retries == 2


async def test_an_empty_member_list_is_refused(rig: Rig) -> None:
    with pytest.raises(ValueError):
        await rig.graph.create_group_chat("Sales ¦ nobody", [])


def standin_tokens(token_standin: TokenStandin, secret: str) -> MsalTokenProvider:
    """MSAL for app "app-id" of tenant contoso-tenant, asking the token stand-in."""
    return MsalTokenProvider(
        "app-id",
        secret,
        scope=GRAPH_SCOPE,
        tenant="contoso-tenant",
        authority_host=token_standin.authority_host,
        http_client=token_standin.http_client(),
        instance_discovery=False,
    )


async def test_msal_token_from_the_token_standin(
    token_standin: TokenStandin, http_session: aiohttp.ClientSession
) -> None:
    tokens = standin_tokens(token_standin, "app-secret")
    async with GraphStandin(
        catalog={"switchboard": "catalog-app-1"}, expected_token="standin-token-1"
    ) as standin:
        graph = GraphClient(http_session, make_sender(), tokens=tokens, base_url=standin.base_url)
        chat_id = await graph.create_group_chat("Sales ¦ Visitor 6", ["aad-agent"])
        catalog_id = await graph.find_catalog_app("switchboard")
        assert catalog_id is not None
        await graph.install_app_in_chat(chat_id, catalog_id)
        assert standin.authorizations == ["Bearer standin-token-1"] * 3
    assert token_standin.discovery_requests == ["contoso-tenant"]
    assert len(token_standin.token_requests) == 1
    request = token_standin.token_requests[0]
    assert (request["tenant"], request["client_id"], request["scope"]) == (
        "contoso-tenant",
        "app-id",
        GRAPH_SCOPE,
    )


async def test_msal_error_surfaces_as_token_error(token_standin: TokenStandin) -> None:
    tokens = standin_tokens(token_standin, "wrong-secret")
    with pytest.raises(TokenError) as caught:
        await tokens.get_token()
    assert caught.value.error == "invalid_client"


async def test_graph_refuses_a_missing_token(http_session: aiohttp.ClientSession) -> None:
    async with GraphStandin(expected_token="secret") as standin:
        graph = GraphClient(http_session, make_sender(), base_url=standin.base_url)
        with pytest.raises(OutboundHTTPError) as caught:
            await graph.create_group_chat("Sales ¦ Visitor 7", ["aad-agent"])
    assert (caught.value.status, caught.value.code) == (401, "InvalidAuthenticationToken")
