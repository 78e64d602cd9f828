"""Activity JSON to the Agents SDK's pydantic models and back.

Reading is ``Activity.model_validate``: pydantic-core checks and converts the whole tree in
Rust (the Bot Framework SDK's msrest walked it attribute by attribute in Python, and Switchboard
needed a hand-written fast path to keep /api/messages fast). Writing is ``model_dump`` in JSON
mode without the fields that are None: the Bot Connector gets no ``null`` for what a reply does
not set, and card content written as ``StrEnum`` members becomes plain strings.
"""

from __future__ import annotations

from typing import Any

from microsoft_agents.activity import Activity
from pydantic import ValidationError

__all__ = ["ActivityUnreadable", "read_activity", "write_activity"]


class ActivityUnreadable(ValueError):
    """The JSON is not an activity: names the first field that is wrong, never its value."""


def read_activity(body: dict[str, Any]) -> Activity:
    """The activity of a JSON body; ``ActivityUnreadable`` names the first wrong field."""
    try:
        return Activity.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else "?"
        raise ActivityUnreadable(f"{where}: {errors[0]['type'] if errors else 'invalid'}") from None
    except Exception as exc:  # the SDK's own checks raise bare exceptions (channelId vs entity)
        raise ActivityUnreadable(type(exc).__name__) from None


def write_activity(activity: Activity) -> dict[str, Any]:
    """The JSON of an outgoing activity, as the Bot Connector takes it."""
    body: dict[str, Any] = activity.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body
