"""The bot's one credential from the environment: a secret, a certificate (PEM or base64
PKCS#12, as a Key Vault reference gives it) or the user-assigned managed identity."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from bot.config import ConfigError, load_settings
from bot.teams.certificates import CertificateUnreadable, load_certificate
from tests.support.certificates import pem, self_signed

BOT = {"MicrosoftAppId": "bot-app", "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
       "MicrosoftAppTenantId": "tenant"}
MSI = {**BOT, "MicrosoftAppType": "UserAssignedMSI"}
PLATFORM = {"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": "h"}


def test_a_managed_identity_takes_the_endpoint_the_platform_sets() -> None:
    settings = load_settings({**MSI, **PLATFORM})
    assert settings.managed_identity and settings.has_credential
    assert (settings.identity_endpoint, settings.identity_header) == (
        PLATFORM["IDENTITY_ENDPOINT"], "h")
    assert load_settings({**MSI, **PLATFORM, "MicrosoftAppTenantId": "t"}).graph_enabled


@pytest.mark.parametrize(("env", "message"), [
    (MSI, "environment IDENTITY_ENDPOINT"),
    ({**MSI, "IDENTITY_ENDPOINT": "http://localhost:1/"}, "environment IDENTITY_ENDPOINT"),
    ({**MSI, **PLATFORM, "MicrosoftAppPassword": "s"}, "has neither"),
    ({**BOT, "MicrosoftAppPassword": "s", "MicrosoftAppCertificate": "x"}, "not both"),
    ({**BOT, "MicrosoftAppCertificate": "not a certificate"},
     "environment MicrosoftAppCertificate: neither PEM nor base64 PKCS#12"),
])
def test_a_credential_that_cannot_work_stops_start_up(env: dict[str, str],
                                                      message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_the_platform_endpoint_alone_is_no_credential() -> None:
    settings = load_settings({**BOT, **PLATFORM})  # SingleTenant without a secret
    assert not settings.has_credential and not settings.graph_enabled


def test_pem_and_pkcs12_give_the_same_credential() -> None:
    key, cert = self_signed()
    pfx = pkcs12.serialize_key_and_certificates(b"bot", key, cert, None,
                                                serialization.NoEncryption())
    from_pem = load_certificate(pem(key, cert))
    from_pfx = load_certificate(base64.b64encode(pfx).decode())
    assert from_pem == from_pfx
    assert from_pem["thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert load_settings({**BOT, "MicrosoftAppCertificate": pem(key, cert)}).has_credential


def test_a_key_of_another_certificate_is_refused_without_showing_either() -> None:
    key, _ = self_signed()
    _, cert = self_signed()
    text = pem(key, cert)
    with pytest.raises(CertificateUnreadable) as caught:
        load_certificate(text)
    assert "does not belong" in str(caught.value) and "BEGIN" not in str(caught.value)


@pytest.mark.parametrize("env", [
    {**BOT, "MicrosoftAppPassword": "s"},  # SingleTenant by default
    {**BOT, "MicrosoftAppType": "SingleTenant", "MicrosoftAppPassword": "s"},
    {**MSI, **PLATFORM},
])
def test_a_single_tenant_bot_without_its_tenant_stops_start_up(env: dict[str, str]) -> None:
    """Without the tenant id the inbound tenant check has nothing to compare with: every
    tenant's activities would get in."""
    without = {k: v for k, v in env.items() if k != "MicrosoftAppTenantId"}
    with pytest.raises(ConfigError, match="environment MicrosoftAppTenantId"):
        load_settings(without)
    assert load_settings(env).single_tenant


def test_a_multi_tenant_bot_needs_no_tenant() -> None:
    settings = load_settings({"MicrosoftAppId": "bot-app", "MicrosoftAppType": "MultiTenant",
                              "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
                              "MicrosoftAppPassword": "s"})
    assert not settings.single_tenant and not settings.graph_enabled
