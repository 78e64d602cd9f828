"""The Universal Action verbs and input ids the cards send (the contract with bot/teams)."""

from __future__ import annotations

from enum import StrEnum


class Verb(StrEnum):
    REGISTER = "register"
    UNREGISTER = "unregister"
    ACCEPT = "accept"
    DECLINE = "decline"
    TERMINATE = "terminate"
    RESET_RONA = "reset_rona"
    SAVE_WRAPUP = "save_wrapup"
    EXTEND_ACW = "extend_acw"
    END_ACW = "end_acw"
    COMPLETE = "complete"
    SESSIONS_PAGE = "sessions_page"
    FILL_NAR = "fill_nar"
    TRANSFER = "transfer"
    DUTY = "duty"
    REPLY = "reply"  # email: send the reply to the sender, the session ends
    REPLY_ALL = "reply_all"  # email: to the sender and everyone else on To and Cc
    MARK_HANDLED = "mark_handled"  # email: no reply from here, the session ends
    OPEN_SESSION = "open_session"  # My Sessions: the detail card of one entry
    SERVICE_DUTY = "service_duty"  # switch the responsibility for one service off or on


class InputId(StrEnum):
    PRIMARY_CODE = "primary_code"
    SECONDARY_CODE = "secondary_code"
    TAGS = "tags"
    NEW_TAGS = "new_tags"
    NAR_REASON = "nar_reason"
    TARGET_SERVICE = "target_service"
    PROFILE = "profile"
    REPLY_TEXT = "reply_text"
    SEARCH = "search"
    RESULT_FILTER = "result_filter"
    MODALITY_FILTER = "modality_filter"
    PERIOD_FILTER = "period_filter"


TAGS_DATASET = "tags"
"""The `Data.Query` dataset of the tags typeahead (invoke `application/search`)."""


SURFACE = "surface"
"""The data key of a button that is not on the agent's own card: its answer redraws that card."""
CHATROOM = "chatroom"
"""SURFACE of the buttons on the header card in the `<Service> ¦ <Customer>` chat."""
