"""ConnectorClient + OutboundSender against the limit-enforcing Bot Connector stand-in, over TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.teams.clock import MonotonicClock
from bot.teams.connector import ConnectorClient
from bot.teams.outbound import OutboundGaveUp, OutboundHTTPError, OutboundSender, RetryPolicy
from bot.teams.ratelimit import RateLimiter
from bot.teams.service_urls import ServiceUrlPolicy
from bot.teams.tokens import BOT_FRAMEWORK_SCOPE, MsalTokenProvider, StaticTokenProvider
from tests.standins.connector import ConnectorStandin
from tests.standins.graph import TokenStandin

LOOPBACK = ServiceUrlPolicy(loopback=True)  # the stand-ins listen on 127.0.0.1

SCALE = 0.02
# Client and stand-in share one event loop here, so the stand-in stamps arrivals a little late
# and unevenly; 10 % headroom absorbs most of that at this scale.
HEADROOM = 0.1
SCALED_RETRY = RetryPolicy(backoff_base=0.5 * SCALE, backoff_cap=30.0 * SCALE)


@dataclass
class Rig:
    standin: ConnectorStandin
    sender: OutboundSender
    client: ConnectorClient


@pytest.fixture
async def rig(http_session: aiohttp.ClientSession) -> AsyncIterator[Rig]:
    async with ConnectorStandin(enforce_limits=True, time_scale=SCALE) as standin:
        clock = MonotonicClock()
        sender = OutboundSender(
            RateLimiter(clock, time_scale=SCALE, headroom=HEADROOM), clock, retry=SCALED_RETRY
        )
        yield Rig(standin, sender, ConnectorClient(http_session, sender, policy=LOOPBACK))


def plain_sender(retry: RetryPolicy | None = None) -> OutboundSender:
    """An outbound sender at Teams' own limits on the monotonic clock."""
    clock = MonotonicClock()
    return OutboundSender(RateLimiter(clock), clock, retry=retry)


async def send_all(rig: Rig, plan: list[tuple[str, str]]) -> list[str]:
    """Send (conversation, text) pairs, all submitted at once in list order."""
    url = rig.standin.service_url
    return await asyncio.gather(
        *(rig.client.send_to_conversation(url, cid, {"text": text}) for cid, text in plan)
    )


async def test_500_messages_into_one_conversation_arrive_in_order(rig: Rig) -> None:
    cid = "19:busy@thread.v2"
    texts = [f"m{i:03d}" for i in range(500)]
    started = time.monotonic()
    ids = await send_all(rig, [(cid, text) for text in texts])
    elapsed = time.monotonic() - started

    assert rig.standin.texts(cid) == texts
    assert len(set(ids)) == 500
    assert [a["id"] for a in rig.standin.activities[cid]] == ids
    # 60 per 30 s: 500 messages need at least 8 full windows (scaled), so pacing really ran.
    assert elapsed >= 8 * 30 * SCALE * 0.95
    # Paced at the limits; a rare 429 (uneven latency at a window edge) is retried.
    assert rig.standin.throttled <= 25, dict(rig.standin.throttled_by)
    assert rig.sender.stats.gave_up == 0


async def test_2000_messages_across_100_conversations(rig: Rig) -> None:
    conversations = [f"a:conv-{n:03d}" for n in range(100)]
    plan = [(cid, f"{cid}/{i:02d}") for i in range(20) for cid in conversations]
    ids = await send_all(rig, plan)

    assert len(set(ids)) == 2000
    for cid in conversations:
        assert rig.standin.texts(cid) == [f"{cid}/{i:02d}" for i in range(20)]
    assert sum(len(v) for v in rig.standin.activities.values()) == 2000
    # Unpaced, the same load draws about 500 429s here; paced, a few dozen at most (the loop is
    # saturated, so the stand-in sees tenant bursts late and bunched). All are retried.
    assert rig.standin.throttled <= 200, dict(rig.standin.throttled_by)


async def test_outage_then_recovery_everything_arrives_in_order(rig: Rig) -> None:
    rig.standin.fail_for(0.3, status=503)
    conversations = [f"a:conv-{n}" for n in range(5)]
    plan = [(cid, f"{cid}/{i:02d}") for i in range(30) for cid in conversations]
    await send_all(rig, plan)

    assert rig.standin.failed > 0
    for cid in conversations:
        assert rig.standin.texts(cid) == [f"{cid}/{i:02d}" for i in range(30)]
    assert rig.sender.stats.retries >= rig.standin.failed


async def test_outage_with_retry_after_then_updates_follow_their_sends(rig: Rig) -> None:
    rig.standin.fail_for(0.2, status=503, retry_after=0.05)
    url, cid = rig.standin.service_url, "a:cards"
    card_id = await rig.client.send_to_conversation(url, cid, {"text": "ringing"})
    for state in ("accepted", "connected", "wrapup", "concluded"):
        await rig.client.update_activity(url, cid, card_id, {"text": state})
    assert rig.standin.latest[card_id]["text"] == "concluded"
    assert [u[2]["text"] for u in rig.standin.updates] == [
        "accepted",
        "connected",
        "wrapup",
        "concluded",
    ]
    assert 0.05 in rig.sender.stats.retry_after_waits


async def test_500_on_one_path_fails_that_call_only(rig: Rig) -> None:
    url = rig.standin.service_url
    rig.standin.fail_path("/v3/conversations/a:broken/", status=500)
    with pytest.raises(OutboundHTTPError) as caught:
        await rig.client.send_to_conversation(url, "a:broken", {"text": "x"})
    assert caught.value.status == 500
    assert caught.value.attempts == 1
    await rig.client.send_to_conversation(url, "a:fine", {"text": "y"})
    assert rig.standin.texts("a:fine") == ["y"]


async def test_blocked_bot_gets_403_message_writes_blocked(rig: Rig) -> None:
    rig.standin.block_conversation("a:gone")
    with pytest.raises(OutboundHTTPError) as caught:
        await rig.client.send_to_conversation(rig.standin.service_url, "a:gone", {"text": "x"})
    assert (caught.value.status, caught.value.code) == (403, "MessageWritesBlocked")


async def test_gives_up_with_a_clear_error(http_session: aiohttp.ClientSession) -> None:
    async with ConnectorStandin() as standin:
        standin.fail_for(60.0, status=502)
        retry = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_cap=0.002)
        client = ConnectorClient(http_session, plain_sender(retry), policy=LOOPBACK)
        with pytest.raises(OutboundGaveUp, match=r"after 3 attempts \(last status 502\)"):
            await client.send_to_conversation(standin.service_url, "a:c", {"text": "x"})
        assert standin.failed == 3


async def test_connection_refused_is_retried_until_the_server_is_back(
    http_session: aiohttp.ClientSession,
) -> None:
    standin = ConnectorStandin()
    await standin.start()
    url = standin.service_url
    await standin.close()
    sender = plain_sender(SCALED_RETRY)
    client = ConnectorClient(http_session, sender, policy=LOOPBACK)
    sending = asyncio.create_task(client.send_to_conversation(url, "a:c", {"text": "late"}))
    await asyncio.sleep(0.1)
    port = int(url.rsplit(":", 1)[1])
    revived = ConnectorStandin()
    try:
        await revived.start(port=port)
        await asyncio.wait_for(sending, 10)
        assert revived.texts("a:c") == ["late"]
        assert sender.stats.connection_errors >= 1
    finally:
        await revived.close()


# --- the rest of the ConnectorClient API, local mode and with tokens -----------------------


async def test_update_create_and_member_lookup(
    connector_standin: ConnectorStandin, http_session: aiohttp.ClientSession
) -> None:
    client = ConnectorClient(http_session, plain_sender(), policy=LOOPBACK)
    url = connector_standin.service_url
    connector_standin.add_member(
        "29:agent",
        name="Alex Wilber",
        user_principal_name="alexw@example.com",
        aad_object_id="aad-alex",
    )

    cid = await client.create_personal_conversation(url, "tenant-1", "28:bot", "29:agent")
    assert cid == await client.create_personal_conversation(url, "tenant-1", "28:bot", "29:agent")
    assert connector_standin.created_conversations[0] == {
        "bot": {"id": "28:bot"},
        "members": [{"id": "29:agent"}],
        "isGroup": False,
        "tenantId": "tenant-1",
        "channelData": {"tenant": {"id": "tenant-1"}},
    }
    activity_id = await client.send_to_conversation(url, cid, {"text": "offer", "attachments": []})
    await client.update_activity(url, cid, activity_id, {"text": "accepted"})
    assert connector_standin.latest[activity_id] == {
        "type": "message",
        "text": "accepted",
        "id": activity_id,
    }

    member = await client.get_member(url, cid, "29:agent")
    assert member == {
        "id": "29:agent",
        "name": "Alex Wilber",
        "userPrincipalName": "alexw@example.com",
        "email": "alexw@example.com",
        "aadObjectId": "aad-alex",
    }
    with pytest.raises(OutboundHTTPError) as caught:
        await client.get_member(url, cid, "29:nobody")
    assert caught.value.status == 404
    with pytest.raises(OutboundHTTPError):
        await client.update_activity(url, cid, "1:unknown", {"text": "x"})
    assert set(connector_standin.authorizations) == {None}


async def test_ids_with_reserved_characters_round_trip(
    connector_standin: ConnectorStandin, http_session: aiohttp.ClientSession
) -> None:
    client = ConnectorClient(http_session, plain_sender(), policy=LOOPBACK)
    cid = "19:abc@thread.v2;messageid=1700000000000"
    url = connector_standin.service_url + "/"
    activity_id = await client.send_to_conversation(url, cid, {"text": "hi"})
    await client.update_activity(url, cid, activity_id, {"text": "edited"})
    assert connector_standin.texts(cid) == ["hi"]
    assert connector_standin.latest[activity_id]["text"] == "edited"


async def test_static_token_is_sent(
    connector_standin: ConnectorStandin, http_session: aiohttp.ClientSession
) -> None:
    client = ConnectorClient(http_session, plain_sender(), tokens=StaticTokenProvider("t0k"),
                             policy=LOOPBACK)
    await client.send_to_conversation(connector_standin.service_url, "a:c", {"text": "x"})
    assert connector_standin.authorizations == ["Bearer t0k"]


async def test_bot_framework_token_from_msal(
    connector_standin: ConnectorStandin,
    token_standin: TokenStandin,
    http_session: aiohttp.ClientSession,
) -> None:
    tokens = MsalTokenProvider(
        "app-id",
        "app-secret",
        scope=BOT_FRAMEWORK_SCOPE,
        authority_host=token_standin.authority_host,
        http_client=token_standin.http_client(),
        instance_discovery=False,
    )
    client = ConnectorClient(http_session, plain_sender(), tokens=tokens, policy=LOOPBACK)
    for n in range(3):
        await client.send_to_conversation(connector_standin.service_url, "a:c", {"text": f"{n}"})
    assert connector_standin.authorizations == ["Bearer standin-token-1"] * 3
    assert len(token_standin.token_requests) == 1
    request = token_standin.token_requests[0]
    assert request["tenant"] == "botframework.com"
    assert request["scope"] == BOT_FRAMEWORK_SCOPE
    assert request["grant_type"] == "client_credentials"
