"""The session bundle a card is drawn from: tag suggestions only for the wrap-up form."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from itertools import product

from bot.dialogs.session_cards import card_suggests, offers_tags, session_card, shows_wrapup_form
from bot.domain.session import Phase, SessionResult
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.offers import accept
from bot.services.queries import acted, load_bundle
from tests.scenario import add_agent, new_task, ringing, sessions_of

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def record_tags(engine: Engine, *tags: str) -> None:
    async def record(ctx: Ctx) -> None:
        await ctx.uow.tags.record("sales", list(tags), ctx.now)

    await engine.run(record)


async def test_suggestions_are_read_only_for_a_card_with_codes_and_tags(
        engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    await record_tags(engine, "Billing", "Refund")
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)

    ringing_bundle = await engine.read(load_bundle, offer.id, suggest=card_suggests())
    assert ringing_bundle.session is not None and ringing_bundle.suggestions == ()

    await engine.run(accept, offer.id, agent)
    connected = await engine.read(load_bundle, offer.id, suggest=card_suggests())
    assert connected.session is not None and connected.session.phase is Phase.CONNECTED
    assert set(connected.suggestions) == {"Billing", "Refund"}  # codes and tags from Accept on

    await engine.run(terminate, offer.id, agent_id=agent)
    in_acw = await engine.read(load_bundle, offer.id, suggest=card_suggests())
    assert in_acw.session is not None and in_acw.session.phase is Phase.ACW
    assert set(in_acw.suggestions) == {"Billing", "Refund"}
    # Read for something other than a card: no suggestions, whatever the phase.
    assert (await engine.read(load_bundle, offer.id)).suggestions == ()


async def test_the_wrapup_flag_asks_for_suggestions_on_a_finished_entry(engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    await record_tags(engine, "Billing")
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, agent)
    await engine.run(terminate, offer.id, agent_id=agent)
    [session] = await sessions_of(engine, task.id)
    done = replace(session, phase=Phase.ENDED)

    assert shows_wrapup_form(done, None, wrapup=True)
    assert (await engine.read(load_bundle, offer.id, suggest=card_suggests(wrapup=True),
                              )).suggestions == ("Billing",)


async def test_offers_tags_says_what_session_card_draws(engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)
    bundle = await engine.read(load_bundle, offer.id)
    assert bundle.session is not None and bundle.agent is not None and agent
    drawn_forms = 0
    for phase, result, saved, wrapup, known in product(
            Phase, [None, *SessionResult], (False, True), (False, True), (False, True)):
        session = replace(bundle.session, phase=phase, result=result,
                          saved_at=T0 if saved else None)
        task_known = bundle.task if known else None
        card = session_card(session, task_known, bundle.agent, engine.catalog, T0,
                            suggestions=("Marker-tag",), wrapup=wrapup)
        drawn = "Marker-tag" in json.dumps(card)
        drawn_forms += drawn
        assert offers_tags(session, task_known, wrapup=wrapup) is drawn, (
            phase, result, saved, wrapup, known)
    assert drawn_forms > 0


async def test_an_action_draws_its_card_from_what_its_unit_of_work_committed(
        engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    await record_tags(engine, "Billing")
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)

    accepted = await engine.run(acted, accept, offer.id, agent, suggest=card_suggests())
    assert accepted == await engine.read(load_bundle, offer.id, suggest=card_suggests())
    assert accepted.session is not None and accepted.session.phase is Phase.CONNECTED
    assert accepted.task is not None and accepted.agent is not None

    ended = await engine.run(acted, terminate, offer.id, agent_id=agent,
                             suggest=card_suggests(wrapup=True))
    assert ended == await engine.read(load_bundle, offer.id,
                                      suggest=card_suggests(wrapup=True))
    assert ended.session is not None and ended.session.phase is Phase.ACW
    assert ended.suggestions == ("Billing",)
