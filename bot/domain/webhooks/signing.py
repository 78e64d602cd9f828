"""The signature of a web request whose template has a `secret`.

    X-Switchboard-Timestamp: <unix seconds when this attempt was sent>
    X-Switchboard-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body bytes)>

The signed bytes are the timestamp, a dot, and the exact body bytes sent (empty for a request
without a body). A receiver recomputes the HMAC over the raw body it got, compares in constant
time, and rejects timestamps too far from its clock (`verify` below does all three), so a
captured request cannot be replayed later. Every retry is signed anew with its own timestamp;
its Idempotency-Key stays the same.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"
TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers that sign `body` at `timestamp`."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance: float = TOLERANCE) -> bool:
    """What a receiver does: True if the headers sign `body` with `secret`, recently enough."""
    stamp, given = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if stamp is None or given is None or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(given, signature(secret, int(stamp), body))
