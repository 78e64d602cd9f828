"""Who is asking a tab: the SSO token Teams gives the page, or in local mode the dev sign-in;
and the registered agent that person is. Refusals are 401 (not signed in) and 403 (signed in,
but not an agent), with a sentence and never data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Settings
from bot.domain.agent import Agent
from bot.http import HttpError
from bot.services import queries
from bot.services.engine import Engine
from bot.tabs.entra import SsoTokenValidator, TokenRejected

log = logging.getLogger(__name__)

LOCAL_SCHEME = "local"  # `Authorization: Local <member of the services file>`, local mode only
NOT_SIGNED_IN = ("You are not signed in. Open Switchboard from the Microsoft Teams app bar: "
                 "Teams signs you in.")
NOT_VERIFIED = ("Your sign-in could not be verified. Reload the tab in Microsoft Teams; if it "
                "stays, ask your administrator to check the app registration.")
LOCAL_ONLY = ("Pick who you are in the local-mode sign-in: a member or supervisor of a service "
              "in the services file.")
NOT_AN_AGENT = ("You are signed in, but not as a registered agent: open the Switchboard chat "
                "in Teams and register first.")


@dataclass(frozen=True)
class Signed:
    """Who signed in, as the services file names members."""

    upn: str | None
    object_id: str | None
    name: str = ""


@dataclass(frozen=True)
class TabUser:
    """The registered agent behind a tab's request."""

    agent: Agent
    signed: Signed

    @property
    def agent_id(self) -> str:
        return self.agent.id


def local_members(settings: Settings) -> list[str]:
    """Everyone the services file lists, members and supervisors, for the local-mode sign-in
    (in file order)."""
    members = (m for s in settings.catalog.services.values() for m in (*s.members,
                                                                        *s.supervisors))
    return list(dict.fromkeys(members))


class TabAuth:
    """Turns a request's Authorization header into the agent, or a 401/403 HttpError."""

    def __init__(self, settings: Settings, validator: SsoTokenValidator | None) -> None:
        self.settings = settings
        self.validator = validator

    @property
    def local_mode(self) -> bool:
        return self.settings.local_mode

    async def signed(self, authorization: str) -> Signed:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if self.local_mode:
            # No app id: no Entra token can be checked, so the dev sign-in stands in for it.
            known = {m.lower(): m for m in local_members(self.settings)}
            if scheme.lower() != LOCAL_SCHEME or value.lower() not in known:
                raise HttpError(401, LOCAL_ONLY, headers={"WWW-Authenticate": "Local"})
            member = known[value.lower()]
            return Signed(upn=member, object_id=member, name=member)
        if scheme.lower() != "bearer" or not value:
            raise HttpError(401, NOT_SIGNED_IN, headers={"WWW-Authenticate": "Bearer"})
        if self.validator is None:  # not started yet
            raise HttpError(503, "Sign-in is starting; try again in a moment.")
        try:
            identity = await self.validator.check(value)
        except TokenRejected as rejected:
            log.info("tab token rejected", extra={"reason": str(rejected)})
            raise HttpError(401, NOT_VERIFIED,
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        return Signed(upn=identity.upn, object_id=identity.object_id, name=identity.name)

    async def user(self, authorization: str, engine: Engine) -> TabUser:
        signed = await self.signed(authorization)
        agent = await engine.read(queries.agent_by_identity, signed.upn, signed.object_id)
        if agent is None:
            raise HttpError(403, NOT_AN_AGENT)
        return TabUser(agent, signed)
