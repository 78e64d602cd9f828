"""A whole conversation at DEBUG: no customer name, email, phone or message text in the logs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.builders import catalog
from tests.support.logs import CapturedLogs
from tests.support.waiting import eventually
from tests.support.world import running_world

API = "/api/interact/v1"
SECRETS = ["Zelda Quixote", "zelda.q@example.org", "+41 79 555 01 23",
           "my account number is 4711", "please call me back", "Sure thing, Zelda"]


async def test_full_scenario_logs_no_customer_data(tmp_path: Path, captured: CapturedLogs) -> None:
    services = catalog({"id": "sales", "name": "Sales", "context": {"store_data": True}},
                       {"id": "support", "name": "Support"})
    async with running_world(services, tmp_path) as world:
        first, second = world.agent(1), world.agent(2)
        await first.register()
        async with world.client.post(world.server.make_url(f"{API}/chats"), json={
                "service": "sales", "text": SECRETS[3],
                "customer": {"name": SECRETS[0], "email": SECRETS[1], "phone": SECRETS[2]}},
                ) as response:
            chat = await response.json()
        auth = {"Authorization": f"Bearer {chat['token']}"}
        [invitation] = await eventually(lambda: first.buttons("accept"))
        await first.accept(invitation)
        await eventually(lambda: any(" ¦ " in json.dumps(c["card"], ensure_ascii=False)
                                     for c in first.cards()))
        async with world.client.post(world.server.make_url(
                f"{API}/chats/{chat['chat_id']}/messages"), json={"text": SECRETS[4]},
                headers=auth) as response:
            assert response.status == 202
        await eventually(lambda: any(SECRETS[4] in t for t in first.texts()))
        await first.say(SECRETS[5])
        # Transfer to Support, where agent 2 takes over, then terminate and save.
        await second.register()
        await first.say("transfer Support")
        [second_invitation] = await eventually(lambda: second.buttons("accept"))
        session_id, _ = await second.accept(second_invitation)
        await second.click("terminate", {"session_id": session_id})
        await second.click("save_wrapup", {"session_id": session_id, "tags": "vip"})
        await world.advance(60)
    text = "\n".join(captured.lines)
    assert any(json.loads(line)["level"] == "DEBUG" for line in captured.lines), \
        "DEBUG was not captured"
    for secret in SECRETS:
        assert secret not in text, f"customer data in the logs: {secret!r}"
