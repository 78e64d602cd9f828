"""Web requests end to end against a local receiver: what is sent, signed, in which order, how
often; with the receiver failing or gone, and the app restarted in between.

Time is a FakeClock: `drain` fires what is due now, `later` moves the clock and fires. The
receiver checks signatures against that clock, dedupes by Idempotency-Key and counts repeats.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bot.domain import events as ev
from bot.domain.customer import Customer
from bot.domain.events import Event
from bot.domain.service import Catalog, Modality
from bot.domain.task import Task
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.offers import accept
from bot.services.wrapup import save_wrapup
from tests.builders import catalog
from tests.contract.conftest import Backend
from tests.fakes import FakeClock
from tests.scenario import add_agent, ringing
from tests.webhooks.harness import SECRET, drain, events, later, pending, running
from tests.webhooks.receiver import Receiver

NAME = 'Zoë "Z" O\'Hara & Co/?#'
EMAIL = "zoe+crm@example.org"
TICKET = "#4711 & more"
CUSTOMER_VALUES = (NAME, EMAIL, TICKET, "Zo", "4711")


def templates(base: str) -> list[dict[str, Any]]:
    return [
        {"on": "ringing", "method": "GET",
         "url": base + "/ring/{task.id}?session={session.id}&name={customer.name}"},
        {"on": "accepted", "url": base + "/signed/accepted/{task.id}", "secret": SECRET,
         "body": '{"task": "{task.id}", "session": "{session.id}", "agent": "{session.agent}",'
                 ' "name": "{customer.name}", "email": "{customer.email}",'
                 ' "ticket": "{param.ticket}", "event": "{event.name}", "at": "{event.at}",'
                 ' "key": "{delivery.id}"}'},
        {"on": "accepted", "method": "PUT", "url": base + "/form/{task.id}",
         "headers": {"Content-Type": "application/x-www-form-urlencoded",
                     "X-Agent": "{session.agent_name}"},
         "body": "name={customer.name}&service={service.name}"},
        {"on": "terminated", "method": "PATCH", "url": base + "/signed/terminated/{task.id}",
         "secret": SECRET, "body": '{"result": "{session.result}", "phase": "{session.phase}"}'},
        {"on": "concluded", "url": base + "/signed/concluded/{task.id}", "secret": SECRET,
         "body": '{"code": "{session.primary_code}", "tags": "{session.tags}",'
                 ' "name": "{customer.name}"}'},
    ]


def services(base: str, **extra: Any) -> Catalog:
    return catalog({"id": "sales", "name": "Sales", "codes": {"primary": ["Sale"]},
                    "web_request": templates(base), **extra})


@pytest.fixture
async def receiver(clock: FakeClock) -> AsyncIterator[Receiver]:
    """The web request receiver, up, stamping arrivals with the fake clock."""
    async with Receiver(secrets={"/signed/": SECRET},
                        now=lambda: clock.now().timestamp()) as started:
        yield started


async def new_task(engine: Engine, name: str = NAME) -> Task:
    return await engine.run(create_task, "sales", Modality.IM, customer=Customer(
        name=name, email=EMAIL, params={"ticket": TICKET}), content={"text": "Hi"})


async def answer(engine: Engine, task: Task) -> tuple[str, str]:
    """Accept the task's offer: (session id, agent id)."""
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, offer.agent_id)
    return offer.id, offer.agent_id


async def one_answered(engine: Engine) -> Task:
    """Agent 1 accepts a new task, and every request that sends goes out once (`drain`)."""
    await add_agent(engine, 1)
    task = await new_task(engine)
    await answer(engine, task)
    await drain(engine)
    return task


def per_task(receiver: Receiver) -> dict[str, list[str]]:
    """Accepted deliveries per task id (the last path segment), as their moments, in order."""
    found: dict[str, list[str]] = {}
    for hit in receiver.accepted:
        found.setdefault(hit.path.rsplit("/", 1)[1], []).append(hit.event)
    return found


def no_customer_data(items: list[Event]) -> None:
    text = json.dumps([e.data for e in items], ensure_ascii=False)
    # Ids and delivery keys are 32 random hex digits: one holds "4711" in a few per cent of
    # runs (this check failed so, now and then). They carry no customer data: leave them out.
    text = re.sub(r"\b[0-9a-f]{32}\b", "<id>", text)
    for value in CUSTOMER_VALUES:
        assert value not in text


FULL = ["ringing", "accepted", "accepted", "terminated", "concluded"]


async def test_a_task_from_ringing_to_concluded_sends_exactly_its_templates(
        backend: Backend, clock: FakeClock, receiver: Receiver) -> None:
    store = await backend.open()
    try:
        async with running(store, clock, services(receiver.base)) as engine:
            agent = await add_agent(engine, 1)
            task = await new_task(engine)
            await drain(engine)
            assert [h.event for h in receiver.accepted] == ["ringing"]
            session, _ = await answer(engine, task)
            await drain(engine)
            await engine.run(terminate, session, agent_id=agent)
            await drain(engine)
            await engine.run(save_wrapup, session, agent, primary="Sale", secondary=None,
                             tags=["vip", "callback"])
            await drain(engine)
            await later(engine, clock, 20)  # ACW ends: no template on that
            assert await pending(engine, task.id) == []
            log = await events(engine)
    finally:
        await backend.close()

    assert per_task(receiver) == {task.id: FULL}
    assert len(receiver.hits) == 5 and set(receiver.answered.values()) == {1}
    keys = [h.key for h in receiver.accepted]
    assert len(set(keys)) == 5 and all(len(k) == 32 for k in keys)
    ring, accepted, form, terminated, concluded = receiver.accepted
    assert (ring.method, accepted.method, form.method, terminated.method, concluded.method) \
        == ("GET", "POST", "PUT", "PATCH", "POST")
    # Signed where the template has a secret, and only there.
    assert [h.signed_ok for h in receiver.accepted] == [None, True, None, True, True]
    assert "X-Switchboard-Signature" not in ring.headers | form.headers
    # Values arrive intact, escaped for where they stood.
    assert ring.query == {"session": [session], "name": [NAME]}
    body = json.loads(accepted.text)
    assert body == {"task": task.id, "session": session, "agent": "a1@example.com",
                    "name": NAME, "email": EMAIL, "ticket": TICKET, "event": "accepted",
                    "at": "2026-11-02T09:00:00.000Z", "key": accepted.key}
    assert accepted.headers["Content-Type"] == "application/json; charset=utf-8"
    assert parse_qs(form.text) == {"name": [NAME], "service": ["Sales"]}
    assert form.headers["X-Agent"] == "Agent 1"
    assert json.loads(terminated.text) == {"result": "accepted", "phase": "acw"}
    # Saved during ACW: the task has not concluded yet, its context is still there.
    assert json.loads(concluded.text) == {"code": "Sale", "tags": "vip, callback", "name": NAME}
    delivered = [e for e in log if e.name == ev.WEBHOOK_DELIVERED]
    assert [(e.data["on"], e.data["template"], e.data["status"], e.data["attempts"])
            for e in delivered] == [("ringing", 0, 200, 1), ("accepted", 1, 200, 1),
                                    ("accepted", 2, 200, 1), ("terminated", 3, 200, 1),
                                    ("concluded", 4, 200, 1)]
    assert [e.data["key"] for e in delivered] == keys
    no_customer_data(log)


async def test_receiver_down_and_app_restarted_every_request_arrives_once_in_order(
        backend: Backend, clock: FakeClock, receiver: Receiver) -> None:
    receiver.answer = lambda hit: 503
    catalog_ = services(receiver.base, acw={"duration": "0s"},
                        distribution={"ring_timeout": "10m"})  # no RONA meanwhile
    store = await backend.open()
    try:
        async with running(store, clock, catalog_) as engine:
            await add_agent(engine, 1)
            await add_agent(engine, 2)
            one, two = await new_task(engine, "One"), await new_task(engine, "Two")
            await drain(engine)  # attempt 1 of each ringing request: 503
            in_one, first = await answer(engine, one)
            await drain(engine)
            # The accepted requests of task one wait behind its ringing one.
            assert {h.event for h in receiver.hits} == {"ringing"}
            assert len(receiver.hits) == 2
            await later(engine, clock, 10)  # attempt 2: 503
            assert len(receiver.hits) == 4
            await receiver.stop()  # now connections are refused
            await later(engine, clock, 40)  # attempt 3: no answer
            assert len(receiver.hits) == 4
        if backend.name == "sqlite":  # the app stops (Cosmos: the fixture closes it)...
            await store.close()
        store = await backend.open()  # ...and starts again on the same data
        async with running(store, clock, catalog_) as engine:
            await drain(engine)  # nothing is due yet: the backoff survived the restart
            await engine.run(terminate, in_one, agent_id=first)
            in_two, second = await answer(engine, two)
            await engine.run(terminate, in_two, agent_id=second)
            for session, agent in ((in_one, first), (in_two, second)):
                await engine.run(save_wrapup, session, agent, primary="Sale",
                                 secondary=None, tags=[])
            await drain(engine)
            assert len(receiver.hits) == 4
            receiver.answer = None
            await receiver.start()  # back, on the same port
            await later(engine, clock, 160)  # attempt 4 goes through, and all behind it
            assert await pending(engine, one.id) == await pending(engine, two.id) == []
            log = await events(engine)
    finally:
        await backend.close()

    assert per_task(receiver) == {one.id: FULL, two.id: FULL}
    # Exactly once by key: every key answered once, no key processed twice.
    assert len(receiver.accepted) == 10 and set(receiver.answered.values()) == {1}
    ringing_keys = [h.key for h in receiver.hits if h.event == "ringing"]
    assert sorted(ringing_keys.count(k) for k in set(ringing_keys)) == [3, 3]  # 503, 503, 200
    assert all(h.signed_ok in (None, True) for h in receiver.hits)
    assert [e for e in log if e.name == ev.WEBHOOK_FAILED] == []
    assert sorted(e.data["attempts"] for e in log if e.name == ev.WEBHOOK_DELIVERED) == \
        [1] * 8 + [4, 4]
    no_customer_data(log)


async def test_after_five_attempts_a_request_is_recorded_failed_and_the_next_one_goes(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    receiver.answer = lambda hit: 503 if hit.event == "ringing" else 200
    async with running(db_path, clock, services(receiver.base)) as engine:
        task = await one_answered(engine)
        for wait in (10, 40, 160):
            await later(engine, clock, wait)
        assert [h.event for h in receiver.hits] == ["ringing"] * 4  # the rest wait
        [head, *_] = await pending(engine, task.id)
        assert (head.attempts, head.last_status) == (4, 503)
        await later(engine, clock, 640)  # the fifth attempt fails too: give up, move on
        assert await pending(engine, task.id) == []
        log = await events(engine)

    assert [h.event for h in receiver.hits] == ["ringing"] * 5 + ["accepted"] * 2
    assert len({h.key for h in receiver.hits[:5]}) == 1  # one delivery, retried
    [failed] = [e for e in log if e.name == ev.WEBHOOK_FAILED]
    assert failed.task_id == task.id
    assert {k: failed.data[k] for k in ("template", "on", "status", "attempts", "key")} == {
        "template": 0, "on": "ringing", "status": 503, "attempts": 5,
        "key": receiver.hits[0].key}
    assert [e.data["on"] for e in log if e.name == ev.WEBHOOK_DELIVERED] == ["accepted"] * 2
    no_customer_data(log)


async def test_a_refusal_that_retrying_cannot_change_fails_at_once(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    receiver.answer = lambda hit: 404 if hit.event == "ringing" else 200
    async with running(db_path, clock, services(receiver.base)) as engine:
        await one_answered(engine)
        log = await events(engine, ev.WEBHOOK_FAILED)
    assert [h.event for h in receiver.hits] == ["ringing", "accepted", "accepted"]
    assert [(e.data["status"], e.data["attempts"]) for e in log] == [(404, 1)]


async def test_a_lost_answer_sends_the_request_again_with_the_same_key(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    base = templates(receiver.base)[1] | {"timeout": "1s"}
    receiver.delay = 1.5  # processed, but the answer comes after the sender gave up
    async with running(db_path, clock, catalog(
            {"id": "sales", "web_request": [base]})) as engine:
        task = await one_answered(engine)
        assert len(receiver.hits) == 1 and len(await pending(engine, task.id)) == 1
        receiver.delay = 0
        await later(engine, clock, 10)
        assert await pending(engine, task.id) == []
        [delivered] = await events(engine, ev.WEBHOOK_DELIVERED)
    first, again = receiver.hits
    assert first.key == again.key and first.text == again.text
    assert first.headers["X-Switchboard-Timestamp"] != again.headers["X-Switchboard-Timestamp"]
    assert first.signed_ok and again.signed_ok  # each attempt signed anew
    assert len(receiver.accepted) == 1 and receiver.answered[first.key] == 2
    assert delivered.data["attempts"] == 2


async def test_requests_keep_what_they_were_rendered_with_after_context_is_removed(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    receiver.answer = lambda hit: 503
    async with running(db_path, clock, services(receiver.base)) as engine:
        agent = await add_agent(engine, 1)
        task = await new_task(engine)
        session, _ = await answer(engine, task)
        await engine.run(terminate, session, agent_id=agent)
        await later(engine, clock, 20)  # ACW ends: the task concludes, context removed
        await engine.run(save_wrapup, session, agent, primary="Sale", secondary=None,
                         tags=[])
        await drain(engine)
        receiver.answer = None
        await later(engine, clock, 10)
        assert await pending(engine, task.id) == []
    by_path = {h.path.split("/")[2]: h for h in receiver.accepted if h.signed_ok}
    assert json.loads(by_path["accepted"].text)["name"] == NAME  # rendered while live
    # Saved after the task concluded; the service did not opt in to keep context.
    assert json.loads(by_path["concluded"].text) == {"code": "Sale", "tags": "", "name": ""}


async def test_a_service_that_keeps_context_sends_it_on_concluded(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    async with running(db_path, clock, services(
            receiver.base, context={"store_data": True})) as engine:
        agent = await add_agent(engine, 1)
        task = await new_task(engine)
        session, _ = await answer(engine, task)
        await engine.run(terminate, session, agent_id=agent)
        await later(engine, clock, 20)
        await engine.run(save_wrapup, session, agent, primary="Sale", secondary=None,
                         tags=[])
        await drain(engine)
    assert json.loads(receiver.accepted[-1].text)["name"] == NAME


async def test_a_signed_request_whose_template_lost_its_secret_is_never_sent_unsigned(
        db_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    receiver.answer = lambda hit: 503
    signed = templates(receiver.base)[1]
    async with running(db_path, clock, catalog({"id": "sales", "web_request": [
            signed]})) as engine:
        task = await one_answered(engine)
    receiver.answer = None
    unsigned = {k: v for k, v in signed.items() if k != "secret"}
    async with running(db_path, clock, catalog({"id": "sales", "web_request": [
            unsigned]})) as engine:
        await later(engine, clock, 10)
        [failed] = await events(engine, ev.WEBHOOK_FAILED)
        assert await pending(engine, task.id) == []
    assert len(receiver.hits) == 1  # only the first attempt, signed, before the change
    assert failed.data["error"] == "TemplateChanged"


async def test_headers_from_the_environment_are_sent_and_never_stored(
        db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        receiver: Receiver) -> None:
    monkeypatch.setenv("SB_TEST_CRM_TOKEN", "tok-0123456789")
    monkeypatch.setenv("SB_TEST_CRM_SIGNING", SECRET)  # the receiver's key for /signed/
    receiver.answer = lambda hit: 503  # the delivery stays in the outbox: look at it
    template = {"on": "ringing", "url": receiver.base + "/signed/ring/{task.id}",
                "secret": "{env.SB_TEST_CRM_SIGNING}",
                "headers": {"Authorization": "Bearer {env.SB_TEST_CRM_TOKEN}",
                            "X-Task": "{task.id}"}}
    async with running(db_path, clock, catalog({"id": "sales", "web_request": [
            template]})) as engine:
        await add_agent(engine, 1)
        task = await new_task(engine)
        await drain(engine)
        [stored] = await pending(engine, task.id)
    [hit] = receiver.hits
    assert hit.headers["Authorization"] == "Bearer tok-0123456789"
    assert hit.headers["X-Task"] == task.id
    assert hit.signed_ok is True  # signed with the key from the environment
    assert stored.attempts == 1 and stored.headers == {"X-Task": task.id}
    assert "tok-0123456789" not in repr(stored) + str(stored.headers)
