"""The agent's desk: commands typed in Teams and actions clicked on cards, each from a table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot import cards
from bot.cards import views as v
from bot.cards.budget import Card
from bot.cards.verbs import CHATROOM, SURFACE, InputId, Verb
from bot.dialogs import views
from bot.dialogs.caller import Caller, MemberDirectory, Reply
from bot.dialogs.session_cards import card_suggests, session_card, stale_card
from bot.domain.errors import Invalid, Refused, Stale
from bot.domain.service import Catalog, Modality
from bot.domain.session import Phase, Session
from bot.services import agents as agent_cases
from bot.services import conversation, lifecycle, mail, offers, queries, wrapup
from bot.services.engine import Engine
from bot.services.ports import SessionSearch

log = logging.getLogger(__name__)

APP_NAME = "Switchboard"
PAGE_SIZE = 15
PERIODS = {"today": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RESULT_GROUPS = {
    "accepted": frozenset({"accepted"}),
    "declined": frozenset({"declined"}),
    "missed": frozenset({"rona", "missed"}),
    "cancelled": frozenset({"cancelled"}),
    "other": frozenset({"rescinded", "expired", "failed"}),
}


def session_search(filters: v.SessionFilters, now: datetime) -> SessionSearch:
    """The store query of My Sessions' filters; periods count back from now (rolling)."""
    period = PERIODS.get(filters.period)
    return SessionSearch(
        text=filters.query,
        results=RESULT_GROUPS.get(filters.result, frozenset()),
        modality=filters.modality if filters.modality in {m.value for m in Modality} else None,
        since=now - period if period else None,
    )


Command = Callable[["Desk", Caller, str], Awaitable[list[Reply]]]
Action = Callable[["Desk", Caller, dict[str, Any]], Awaitable[Card]]


class Desk:
    """Turns what an agent types or clicks into use cases, and their results into cards."""

    def __init__(self, engine: Engine, directory: MemberDirectory) -> None:
        self.engine = engine
        self.directory = directory

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog

    # -- rendering ------------------------------------------------------------------------

    async def card_for(self, session_id: str, *, error: str | None = None,
                       wrapup_form: bool = False) -> Card:
        bundle = await self.engine.read(queries.load_bundle, session_id,
                                        suggest=card_suggests(wrapup=wrapup_form))
        return self.draw(bundle, error=error, wrapup_form=wrapup_form)

    def draw(self, bundle: queries.SessionBundle, *, error: str | None = None,
             wrapup_form: bool = False) -> Card:
        if bundle.session is None:
            return stale_card(None, "This session is no longer known.")
        return session_card(bundle.session, bundle.task, bundle.agent, self.catalog,
                            self.engine.clock.now(), suggestions=bundle.suggestions,
                            error=error, wrapup=wrapup_form)

    async def act(self, caller: Caller, use_case: Callable[..., Awaitable[Session]], *args: Any,
                  wrapup_form: bool = False, **kwargs: Any) -> Card:
        """A card action: its use case, and the card as that left it (the answer shows it on
        the card clicked, so that card's own update can settle: CARD_SETTLE)."""
        bundle = await self.engine.run(queries.acted, use_case, *args,
                                       suggest=card_suggests(wrapup=wrapup_form),
                                       answering=caller.card_id, **kwargs)
        return self.draw(bundle, wrapup_form=wrapup_form)

    async def status_card(self, caller: Caller) -> Card:
        agent, open_sessions = await self.engine.read(queries.agent_with_open_sessions,
                                                      caller.user_id)
        if agent is None:
            return cards.info_card(v.InfoView("Not installed", "Install the app first."))
        return cards.status_card(views.status(agent, self.catalog, self.engine.clock.now(),
                                              open_sessions))

    async def sessions_card(self, caller: Caller, page: int,
                            query: str | v.SessionFilters) -> Card:
        filters = query if isinstance(query, v.SessionFilters) else v.SessionFilters(query)
        search = session_search(filters, self.engine.clock.now())

        found = await self.engine.read(queries.sessions_page, caller.user_id, PAGE_SIZE + 1,
                                       page * PAGE_SIZE, search)
        return cards.sessions_card(v.SessionsView(
            entries=tuple(views.session_entry(s) for s in found[:PAGE_SIZE]),
            page=page, has_previous=page > 0, has_next=len(found) > PAGE_SIZE,
            query=filters.query, filters=filters))

    async def session_detail_card(self, caller: Caller, session_id: str) -> Card:
        bundle = await self.engine.read(queries.load_bundle, session_id)
        if bundle.session is None or bundle.session.agent_id != caller.user_id:
            raise Refused("This session is not yours.")
        return cards.session_detail_card(views.session_detail(bundle.session, bundle.task,
                                                              self.catalog))

    async def nar_card(self, caller: Caller, error: str | None = None) -> Card:
        agent = await self.engine.read(queries.agent, caller.user_id)
        if agent is None:
            return cards.info_card(v.InfoView("Not installed", "Install the app first."))
        return cards.nar_card(views.nar(agent, self.catalog, self.engine.clock.now(), error))

    # -- entry points ---------------------------------------------------------------------

    async def installed(self, caller: Caller) -> list[Reply]:
        agent = await self.engine.run(agent_cases.installed, caller.user_id, caller.name,
                                      caller.reference)
        return [cards.welcome_card(v.WelcomeView(APP_NAME, agent.registered))]

    async def remember(self, caller: Caller) -> None:
        await self.engine.run(agent_cases.installed, caller.user_id, caller.name,
                              caller.reference)

    async def command(self, caller: Caller, text: str) -> list[Reply]:
        """A message in the personal chat: a command, or chat text for a local-mode session."""
        name, _, args = text.strip().partition(" ")
        handler = COMMANDS.get(name.lower())
        if handler is None:
            session = await self._local_chat(caller)
            if session is not None:
                return await self.chatroom(caller, session, text)
            return [f"I don't know \"{name[:40]}\". Type **help** to see what I can do."]
        if name.lower() not in OPEN_COMMANDS and not await self._registered(caller):
            return ["You are not registered for invitations yet. Type **register** to start."]
        try:
            return await handler(self, caller, args.strip())
        except Refused as refused:
            return [refused.message]

    async def chatroom_message(self, caller: Caller, text: str) -> list[Reply]:
        session = await self.engine.read(queries.session_in_chat, caller.conversation_id)
        if session is None:
            return []  # a group chat that is not one of ours: stay quiet
        return await self.chatroom(caller, session, text)

    async def suggest_tags(self, caller: Caller, card_id: str | None, text: str,
                           limit: int) -> list[str]:
        """Tags used before in the service of the card being filled in."""
        limit = max(1, min(limit, 15)) if isinstance(limit, int) else 15

        return await self.engine.read(queries.tag_suggestions, caller.user_id, card_id, text,
                                      limit)

    async def chatroom(self, caller: Caller, session: Session, text: str) -> list[Reply]:
        """A message in a chatroom: `end`, `transfer <service>`, or text for the customer."""
        name, _, args = text.strip().partition(" ")
        try:
            if name.lower() == "end":
                await self.engine.run(lifecycle.terminate, session.id, agent_id=caller.user_id)
                return ["The session ended. Your card now has the wrap-up form."]
            if name.lower() == "transfer" and args.strip():
                target = self._service_named(args.strip())
                await self.engine.run(lifecycle.transfer, session.id, target,
                                      agent_id=caller.user_id)
                return [f"Transferred to {self.catalog.service(target).name}."]
            await self.engine.run(conversation.agent_message, session.id, caller.user_id, text)
        except Refused as refused:
            return [refused.message]
        return []

    async def action(self, caller: Caller, verb: str, data: dict[str, Any]) -> Card:
        """A card button: run it and answer with the card as it is now (never an error)."""
        handler = ACTIONS.get(verb)
        if handler is None:
            return cards.info_card(v.InfoView("Unknown action", "This button is not known."))
        if data.get(SURFACE) == CHATROOM and verb in CHATROOM_VERBS:
            return await self.chatroom_action(caller, handler, data)
        try:
            return await handler(self, caller, data)
        except Invalid as invalid:
            session_id = str(data.get("session_id", ""))
            if session_id and verb == Verb.SAVE_WRAPUP:
                return await self.card_for(session_id, error=invalid.message, wrapup_form=True)
            if session_id and verb in (Verb.REPLY, Verb.REPLY_ALL, Verb.TRANSFER):
                return await self.card_for(session_id, error=invalid.message)
            if verb == Verb.FILL_NAR:
                return await self.nar_card(caller, invalid.message)
            return cards.info_card(v.InfoView("Not done", invalid.message))
        except Refused as refused:
            session_id = str(data.get("session_id", ""))
            if session_id:
                bundle = await self.engine.read(queries.load_bundle, session_id)
                if bundle.session is not None and bundle.session.agent_id == caller.user_id:
                    if isinstance(refused, Stale):
                        return stale_card(bundle.session, refused.message)
                    # A refusal on the agent's own live session keeps its card and says why.
                    return await self.card_for(session_id, error=refused.message)
            return stale_card(None, refused.message)

    async def chatroom_action(self, caller: Caller, handler: Action,
                              data: dict[str, Any]) -> Card:
        """A button on the chatroom's header: the same use case as on the agent's own card (which
        follows by itself), answered with the header as it is now."""
        error = None
        try:
            await handler(self, caller, data)
        except Refused as failed:
            error = failed.message
        return await self.chatroom_card(_session_id(data), error=error)

    async def chatroom_card(self, session_id: str, *, error: str | None = None) -> Card:
        found = await self.engine.read(queries.chatroom, session_id)
        if found.session is None:
            return stale_card(None, "This session is no longer known.")
        return cards.chat_header_card(views.chat_header(
            found.session, self.catalog, found.transcript, suggestions=found.suggestions,
            error=error))

    # -- helpers --------------------------------------------------------------------------

    async def _registered(self, caller: Caller) -> bool:
        return await self.engine.read(queries.registered, caller.user_id)

    async def _local_chat(self, caller: Caller) -> Session | None:
        """In local mode the chat with the customer runs in the personal chat."""
        session = (await self.engine.read(queries.session_in_chat, caller.conversation_id)
                   if caller.conversation_id else None)
        if session is None or session.phase is not Phase.CONNECTED:
            return None
        return session

    def _service_named(self, text: str) -> str:
        wanted = text.strip().lower()
        for service in self.catalog.services.values():
            if wanted in (service.id, service.name.lower()):
                return service.id
        raise Refused(f"There is no service called {text.strip()[:60]!r}.")


# -- commands ---------------------------------------------------------------------------------

async def cmd_help(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    return [cards.help_card(v.HelpView(APP_NAME))]


async def cmd_register(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    member = await desk.directory.lookup(caller)
    agent = await desk.engine.run(agent_cases.register, caller.user_id, name=member.name,
                                  upn=member.upn, object_id=member.object_id)
    if not agent.services:
        return ["You are registered, but no service lists you as a member yet. Ask a service "
                "owner to add your account, then type **register** again."]
    names = ", ".join(desk.catalog.service(s).name for s in agent.services)
    return [f"You are registered and will receive invitations for: {names}."]


async def cmd_unregister(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    await desk.engine.run(agent_cases.unregister, caller.user_id)
    return ["You are unregistered and will get no more invitations. Type **register** to "
            "come back."]


async def cmd_status(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    return [await desk.status_card(caller)]


async def cmd_duty(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    if not args:
        return [await desk.status_card(caller)]
    await desk.engine.run(agent_cases.set_duty, caller.user_id, args)
    return [await desk.status_card(caller)]


async def cmd_reset(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    await desk.engine.run(agent_cases.reset_rona, caller.user_id)
    return ["RONA is reset: you can receive invitations again."]


async def cmd_sessions(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    return [await desk.sessions_card(caller, 0, args)]


async def cmd_nar(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    return [await desk.nar_card(caller)]


async def cmd_service(desk: Desk, caller: Caller, args: str) -> list[Reply]:
    """`service <name> off|on`: the responsibility for one service, the others unchanged."""
    name, _, switch = args.rpartition(" ")
    if switch.lower() not in ("on", "off") or not name.strip():
        return ["Type **service <name> off** or **service <name> on**."]
    service_id = desk._service_named(name)
    await desk.engine.run(agent_cases.set_service_duty, caller.user_id, service_id,
                          switch.lower() == "on")
    return [await desk.status_card(caller)]


COMMANDS: dict[str, Command] = {
    "help": cmd_help,
    "register": cmd_register,
    "unregister": cmd_unregister,
    "status": cmd_status,
    "duty": cmd_duty,
    "reset": cmd_reset,
    "sessions": cmd_sessions,
    "nar": cmd_nar,
    "service": cmd_service,
}
OPEN_COMMANDS = {"help", "register", "unregister"}


# -- card actions -----------------------------------------------------------------------------

def _session_id(data: dict[str, Any]) -> str:
    value = data.get("session_id")
    if not isinstance(value, str) or not value:
        raise Refused("This button does not name a session.")
    return value


async def act_register(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    replies = await cmd_register(desk, caller, "")
    return cards.info_card(v.InfoView("Registration", str(replies[0])))


async def act_unregister(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    replies = await cmd_unregister(desk, caller, "")
    return cards.info_card(v.InfoView("Registration", str(replies[0])))


async def act_accept(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, offers.accept, _session_id(data), caller.user_id)


async def act_decline(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, offers.decline, _session_id(data), caller.user_id)


async def act_terminate(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, lifecycle.terminate, _session_id(data), agent_id=caller.user_id)


async def act_reset_rona(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    await desk.engine.run(agent_cases.reset_rona, caller.user_id)
    session_id = data.get("session_id")
    if isinstance(session_id, str) and session_id:
        return await desk.card_for(session_id)
    return await desk.status_card(caller)


def _tags(data: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    for key in (InputId.TAGS, InputId.NEW_TAGS):
        raw = data.get(key.value)
        if isinstance(raw, str):
            tags += [t for t in raw.split(",") if t.strip()]
        elif isinstance(raw, list):
            tags += [str(t) for t in raw]
    return tags


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value.strip() else None


async def act_save(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(
        caller, wrapup.save_wrapup, _session_id(data), caller.user_id,
        primary=_text(data, InputId.PRIMARY_CODE.value),
        secondary=_text(data, InputId.SECONDARY_CODE.value), tags=_tags(data))


async def act_extend_acw(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, lifecycle.extend_acw, _session_id(data), agent_id=caller.user_id)


async def act_end_acw(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, lifecycle.end_acw, _session_id(data), agent_id=caller.user_id,
                          wrapup_form=True)


async def act_complete(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    session_id = _session_id(data)
    bundle = await desk.engine.read(queries.load_bundle, session_id)
    if bundle.session is None or bundle.session.agent_id != caller.user_id:
        raise Refused("This session is not yours.")
    return await desk.card_for(session_id, wrapup_form=True)


def _filter(data: dict[str, Any], typed: InputId, carried: str) -> str:
    """A filter as typed in the card's inputs (Search), else as carried by a page button."""
    for key in (typed.value, carried):
        value = data.get(key)
        if isinstance(value, str):
            return value.strip()[:200]
    return ""


async def act_sessions_page(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    page = data.get("page", 0)
    page = min(max(0, page), 10_000) if isinstance(page, int) else 0
    filters = v.SessionFilters(
        query=_filter(data, InputId.SEARCH, "query"),
        result=_filter(data, InputId.RESULT_FILTER, "result"),
        modality=_filter(data, InputId.MODALITY_FILTER, "modality"),
        period=_filter(data, InputId.PERIOD_FILTER, "period"))
    return await desk.sessions_card(caller, page, filters)


async def act_open_session(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.session_detail_card(caller, _session_id(data))


async def act_service_duty(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    service_id = data.get("service_id")
    if not isinstance(service_id, str) or service_id not in desk.catalog.services:
        raise Invalid("This button does not name a known service.", field="service_id")
    await desk.engine.run(agent_cases.set_service_duty, caller.user_id, service_id,
                          data.get("on") in (1, "1", True))
    return await desk.status_card(caller)


async def act_fill_nar(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    reason = _text(data, InputId.NAR_REASON.value)
    if reason is None:
        raise Invalid("Choose a reason.", field="nar_reason")
    await desk.engine.run(agent_cases.fill_nar, caller.user_id, str(data.get("request_id", "")),
                          reason)
    return await desk.nar_card(caller)


async def act_transfer(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    target = _text(data, InputId.TARGET_SERVICE.value)
    if target is None:
        raise Invalid("Choose a service to transfer to.", field="target_service")
    session_id = _session_id(data)
    await desk.engine.run(lifecycle.transfer, session_id, desk._service_named(target),
                          agent_id=caller.user_id)
    return await desk.card_for(session_id)


async def act_duty(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    profile = _text(data, "profile") or _text(data, InputId.PROFILE.value)
    if profile is None:
        raise Invalid("Choose a profile.", field="profile")
    await desk.engine.run(agent_cases.set_duty, caller.user_id, profile)
    return await desk.status_card(caller)


async def _reply(desk: Desk, caller: Caller, data: dict[str, Any], *, reply_all: bool) -> Card:
    session_id = _session_id(data)
    if not desk.engine.replies_enabled:
        raise Refused("Replies are off here: no SMTP relay is configured "
                      "(SWITCHBOARD_SMTP_RELAY). Answer from a mailbox, then Mark handled.")
    text = data.get(InputId.REPLY_TEXT.value)
    await desk.engine.run(mail.reply, session_id, caller.user_id,
                          text if isinstance(text, str) else "", reply_all=reply_all)
    return await desk.card_for(session_id)


async def act_reply(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await _reply(desk, caller, data, reply_all=False)


async def act_reply_all(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await _reply(desk, caller, data, reply_all=True)


async def act_mark_handled(desk: Desk, caller: Caller, data: dict[str, Any]) -> Card:
    return await desk.act(caller, mail.mark_handled, _session_id(data), caller.user_id)


ACTIONS: dict[str, Action] = {
    Verb.REGISTER: act_register,
    Verb.UNREGISTER: act_unregister,
    Verb.ACCEPT: act_accept,
    Verb.DECLINE: act_decline,
    Verb.TERMINATE: act_terminate,
    Verb.RESET_RONA: act_reset_rona,
    Verb.SAVE_WRAPUP: act_save,
    Verb.EXTEND_ACW: act_extend_acw,
    Verb.END_ACW: act_end_acw,
    Verb.COMPLETE: act_complete,
    Verb.SESSIONS_PAGE: act_sessions_page,
    Verb.FILL_NAR: act_fill_nar,
    Verb.TRANSFER: act_transfer,
    Verb.DUTY: act_duty,
    Verb.REPLY: act_reply,
    Verb.REPLY_ALL: act_reply_all,
    Verb.MARK_HANDLED: act_mark_handled,
    Verb.OPEN_SESSION: act_open_session,
    Verb.SERVICE_DUTY: act_service_duty,
}

CHATROOM_VERBS = frozenset({Verb.SAVE_WRAPUP, Verb.TERMINATE})
"""The buttons the chatroom's header card carries."""
