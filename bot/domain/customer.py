"""Customer context attached to a task: details and custom parameters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Customer:
    name: str = ""
    email: str = ""
    phone: str = ""
    params: dict[str, str] = field(default_factory=dict)
    # The name is only what the customer typed into a website chat (no signed identity).
    unverified: bool = False

    def is_empty(self) -> bool:
        return not (self.name or self.email or self.phone or self.params)


PHONE_SEPARATORS = " -()./"


def phone_key(phone: str) -> str:
    """A phone number as privacy requests compare it: without spaces and separators."""
    return "".join(c for c in phone if c not in PHONE_SEPARATORS)
