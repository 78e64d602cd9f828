"""A signed-in customer's identity, signed by the website with the service's shared secret.

The website's server signs `identity = {"name", "email", "exp", "sig"}` where `exp` is the Unix
time (seconds) after which the signature is no good, and `sig` is the lowercase hex
HMAC-SHA256, under the service's secret, of the canonical string

    "switchboard-identity-v1\\n<service id>\\n<name>\\n<email>\\n<exp>"

(UTF-8). The service id is part of it, so an identity signed for one service is no good for
another; `exp` at most MAX_LIFETIME ahead, so a signature copied out of a page is soon useless.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.http import HttpError

PREFIX = "switchboard-identity-v1"
MAX_LIFETIME = timedelta(hours=24)
MAX_FIELD = 320
FIELDS = ("name", "email", "exp", "sig")


class BadIdentity(HttpError):
    """The identity is malformed (400) or its signature does not hold (401)."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


def canonical(service_id: str, name: str, email: str, exp: int) -> bytes:
    return "\n".join([PREFIX, service_id, name, email, str(exp)]).encode()


def sign(secret: str, service_id: str, name: str, email: str, exp: int) -> str:
    """What the website computes (here for tests and for the README's example)."""
    return hmac.new(secret.encode(), canonical(service_id, name, email, exp),
                    hashlib.sha256).hexdigest()


def verify(value: Any, secret: str, service_id: str, now: datetime) -> Identity:
    if not isinstance(value, dict) or set(value) - set(FIELDS):
        raise BadIdentity(400, "`identity` must be an object with name, email, exp and sig.")
    name, email, exp, sig = (value.get(k) for k in FIELDS)
    if not isinstance(name, str) or not isinstance(email, str) or len(name) > MAX_FIELD \
            or len(email) > MAX_FIELD:
        raise BadIdentity(400, "`identity.name` and `identity.email` must be strings of at "
                               f"most {MAX_FIELD} characters.")
    if not isinstance(exp, int) or isinstance(exp, bool) or not 0 < exp < 2**40:
        raise BadIdentity(400, "`identity.exp` is required: the Unix time the signature ends.")
    if not isinstance(sig, str) or len(sig) > 128:
        raise BadIdentity(400, "`identity.sig` must be the hex HMAC-SHA256 signature.")
    if not secret:
        raise BadIdentity(400, "This service takes no signed identities.")
    expected = sign(secret, service_id, name, email, exp)
    if not hmac.compare_digest(expected, sig.lower()):
        raise BadIdentity(401, "The identity's signature is not valid.")
    moment = now.timestamp()
    if exp <= moment:
        raise BadIdentity(401, "The identity's signature has expired.")
    if exp > moment + MAX_LIFETIME.total_seconds():
        raise BadIdentity(401, "The identity's `exp` is too far ahead (at most 24 hours).")
    if not name.strip() and not email.strip():
        raise BadIdentity(400, "A signed identity names the customer (name or email).")
    return Identity(name=name.strip(), email=email.strip())
