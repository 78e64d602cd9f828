"""Refusals the use cases answer with: stale clicks, invalid wrap-ups, unknown things."""

from __future__ import annotations


class Refused(Exception):
    """A request the domain turns down with a message for the person who made it."""

    def __init__(self, message: str, *, code: str = "refused",
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after  # seconds after which asking again may succeed


class NotFound(Refused):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_found")


class Stale(Refused):
    """The action was meant for a state that has passed (taken, expired, clicked twice)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="stale")


class Invalid(Refused):
    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, code="invalid")
        self.field = field


class InvalidTransition(Exception):
    """A use case asked an entity for a change its state does not allow: a bug, not a refusal
    (the use cases check what a person may ask before they ask the entity)."""
