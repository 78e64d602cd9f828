"""Teams SSO tokens checked against a local key set served over a real socket: a valid one
passes; the wrong audience, the wrong issuer, an expired one, a bad signature and `alg: none`
are each refused; keys are fetched once and again for an unknown key id only after a while."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.signing_keys import KEYS_TTL, REFETCH_EVERY, PublishedKeys
from bot.tabs.entra import Identity, SsoTokenValidator, TokenRejected, metadata_url
from tests.tabs.entra_standin import APP_ID, HOST, TENANT, EntraKeys, unsigned


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def validator(entra: EntraKeys, ticks: Ticks) -> AsyncIterator[SsoTokenValidator]:
    async with aiohttp.ClientSession() as session:
        keys = PublishedKeys(session, metadata_url(entra.authority, TENANT), now=ticks)
        yield SsoTokenValidator(app_id=APP_ID, public_host=HOST, tenant_id=TENANT,
                                authority=entra.authority, keys=keys)


async def test_a_valid_token_names_the_user(entra: EntraKeys,
                                            validator: SsoTokenValidator) -> None:
    identity = await validator.check(entra.token())
    assert identity == Identity(object_id="00000000-0000-0000-0000-000000000001",
                                upn="a1@example.com", name="Agent 1", tenant_id=TENANT)


async def test_a_v1_token_and_a_v2_token_for_the_app_id_pass(
        entra: EntraKeys, validator: SsoTokenValidator) -> None:
    v1 = entra.token(iss=f"https://sts.windows.net/{TENANT}/")
    assert (await validator.check(v1)).upn == "a1@example.com"
    v2 = entra.token(aud=APP_ID, upn=None, preferred_username="a2@example.com")
    assert (await validator.check(v2)).upn == "a2@example.com"


def _bad_tokens(entra: EntraKeys) -> dict[str, str]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "wrong audience": entra.token(aud=f"api://{HOST}/00000000-0000-0000-0000-000000000000"),
        "another host's audience": entra.token(aud=f"api://evil.example/{APP_ID}"),
        "wrong issuer": entra.token(iss="https://login.microsoftonline.com/"
                                        "99999999-2222-3333-4444-555555555555/v2.0"),
        "another tenant": entra.token(tid="99999999-2222-3333-4444-555555555555"),
        "expired": entra.token(exp=1_000_000_000, iat=999_990_000, nbf=999_990_000),
        "bad signature": entra.token(key=stranger),
        "alg none": unsigned(entra.claims(), entra.kid),
        "unknown key": entra.token(kid="somebody-elses-key"),
        "no scope": entra.token(scp="User.Read"),
        "no user": entra.token(oid=None),
        "not a token": "not.a.jwt",
    }


@pytest.mark.parametrize("kind", ["wrong audience", "another host's audience",
                                  "wrong issuer", "another tenant", "expired",
                                  "bad signature", "alg none", "unknown key", "no scope",
                                  "no user", "not a token"])
async def test_a_bad_token_is_rejected(entra: EntraKeys, validator: SsoTokenValidator,
                                       kind: str) -> None:
    with pytest.raises(TokenRejected):
        await validator.check(_bad_tokens(entra)[kind])


async def test_an_hs256_token_signed_with_the_public_key_is_rejected(
        entra: EntraKeys, validator: SsoTokenValidator) -> None:
    public = entra.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = jwt.encode(entra.claims(), public.decode()[:64], algorithm="HS256",
                        headers={"kid": entra.kid})
    with pytest.raises(TokenRejected, match="RS256"):
        await validator.check(forged)


async def test_keys_are_fetched_once_and_again_for_an_unknown_key_only_after_a_while(
        entra: EntraKeys, validator: SsoTokenValidator, ticks: Ticks) -> None:
    for _ in range(3):
        await validator.check(entra.token())
    assert entra.metadata_fetches == 1
    ticks.value += REFETCH_EVERY
    for _ in range(5):  # a flood of unknown key ids costs one fetch, not one each
        with pytest.raises(TokenRejected):
            await validator.check(entra.token(kid="rotated-key"))
    assert entra.metadata_fetches == 2
    entra.kid = "rotated-key"  # Entra rolled its keys: the new one is published now...
    with pytest.raises(TokenRejected):  # ...but not fetched again so soon
        await validator.check(entra.token())
    ticks.value += REFETCH_EVERY
    assert (await validator.check(entra.token())).upn == "a1@example.com"
    assert entra.metadata_fetches == 3


async def test_stale_keys_still_answer_while_the_key_endpoint_is_down(
        entra: EntraKeys, validator: SsoTokenValidator, ticks: Ticks) -> None:
    await validator.check(entra.token())
    ticks.value += KEYS_TTL + 1  # a day later the set is due for a fetch...
    entra.down = True  # ...and the endpoint is down: one try, then the keys there are
    for _ in range(3):
        assert (await validator.check(entra.token())).upn == "a1@example.com"
    assert entra.metadata_fetches == 2
    ticks.value += REFETCH_EVERY
    entra.down = False
    await validator.check(entra.token())
    assert entra.metadata_fetches == 3
