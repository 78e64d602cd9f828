"""The bot's outbound tokens (Bot Connector, Graph) from its one credential: a client secret, a
certificate, or the user-assigned managed identity of the container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.config import Settings
from bot.teams.certificates import load_certificate
from bot.teams.tokens import (
    BOT_FRAMEWORK_RESOURCE,
    BOT_FRAMEWORK_SCOPE,
    GRAPH_RESOURCE,
    GRAPH_SCOPE,
    CertificateCredential,
    ManagedIdentityTokenProvider,
    MsalTokenProvider,
    TokenProvider,
)


@dataclass(frozen=True)
class OutboundTokens:
    """None where the bot has no credential (local mode): then calls go without a token."""

    bot_connector: TokenProvider | None
    graph: TokenProvider | None


def outbound_tokens(settings: Settings, session: aiohttp.ClientSession,
                    msal_options: dict[str, Any] | None = None) -> OutboundTokens:
    """Token providers for the Bot Connector and, with a tenant, for Microsoft Graph.

    ``msal_options`` go to MSAL (a stand-in's http client in tests)."""
    if not settings.has_credential:
        return OutboundTokens(None, None)
    if settings.managed_identity:
        def identity(resource: str) -> ManagedIdentityTokenProvider:
            return ManagedIdentityTokenProvider(
                session, endpoint=settings.identity_endpoint, header=settings.identity_header,
                client_id=settings.app_id, resource=resource)
        return OutboundTokens(identity(BOT_FRAMEWORK_RESOURCE),
                              identity(GRAPH_RESOURCE) if settings.graph_enabled else None)
    credential: str | CertificateCredential = (
        load_certificate(settings.app_certificate) if settings.app_certificate
        else settings.app_password)

    def msal(scope: str, tenant: str | None) -> MsalTokenProvider:
        return MsalTokenProvider(settings.app_id, credential, scope=scope, tenant=tenant,
                                 authority_host=settings.authority, **(msal_options or {}))
    # A single-tenant bot's Bot Connector tokens come from its tenant; Graph's always do.
    bot = msal(BOT_FRAMEWORK_SCOPE,
               settings.tenant_id if settings.single_tenant else None)
    return OutboundTokens(bot, msal(GRAPH_SCOPE, settings.tenant_id)
                          if settings.graph_enabled else None)
