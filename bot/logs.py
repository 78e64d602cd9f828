"""Structured logging: one JSON object a line, with the extra fields a call passes."""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from bot import jsonio

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_NUMBERS = frozenset({int, float, bool})


# Credentials as they appear in what libraries log: header lines (aiohttp's parser errors
# quote the raw line), bearer tokens, and secrets in query strings.
_SECRET_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-ms-authorization"
    r"|ocp-apim-subscription-key|x-identity-header)(\s*[:=]\s*)[^\r\n'\"]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\",;]+")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:token|access_token|id_token|key|sig|signature|code|secret|password)=)"
    r"[^&\s'\"]*")
REDACTED = "[redacted]"
# Matches wherever one of the three above could: most lines have none, and one search is
# cheaper than three substitutions.
_MAYBE_SECRET = re.compile(
    r"(?i)authorization|cookie|api-key|subscription-key|identity-header|bearer|basic"
    r"|[?&;](?:token|access_token|id_token|key|sig|signature|code|secret|password)=")

# The request a line belongs to (bot/observability/access.py sets it); jobs a request started
# inherit it, so an operator can follow one chat from its request to its Teams calls.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def redact(text: str) -> str:
    """`text` with every credential it quotes replaced by [redacted]."""
    if not text or not _MAYBE_SECRET.search(text):
        return text
    text = _SECRET_HEADER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
    return _SECRET_QUERY.sub(lambda m: f"{m[1]}{REDACTED}", text)


class JsonFormatter(logging.Formatter):
    """Every record, whichever library wrote it, goes through `redact` (message, extras,
    traceback); aiohttp's own records keep only the error's type, not the raw request bytes
    its parser errors quote."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid and span.trace_flags.sampled:  # an unsampled trace is never exported
            entry["trace_id"] = format(span.trace_id, "032x")
        for key, value in record.__dict__.items():
            if key in _STANDARD or key[0] == "_":
                continue
            entry[key] = value if type(value) in _NUMBERS else redact(str(value))
        if record.exc_info:
            if record.name.startswith("aiohttp.") and record.exc_info[0] is not None:
                entry["exc"] = record.exc_info[0].__name__
            else:
                entry["exc"] = redact(self.formatException(record.exc_info))
        return jsonio.dumps(entry)


# Libraries that log payloads at DEBUG: SQL parameters (aiosqlite), HTTP bodies and headers
# (azure, msal, urllib3, the Agents SDK). Payloads carry customer data, which never goes into logs.
PAYLOAD_LOGGERS = ("aiosqlite", "azure", "msal", "urllib3", "microsoft_agents",
                   "aiohttp.client", "aiosmtpd", "mail.log")


# azure-core's HTTP logging policy writes every request and response at INFO (method, the URL
# with the document's id, headers): one line per Cosmos DB request. These stay at WARNING.
QUIET_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy")

# The Agents SDK logs an activity that fails validation at ERROR, its values (customer text)
# included; the 400 names the field instead (bot/teams/wire.py). Silent.
SILENT_LOGGERS = ("microsoft_agents.activity.activity",)


def keep_payloads_out() -> None:
    """Cap the payload-logging libraries at INFO, the per-request ones at WARNING and the ones
    that log payloads at ERROR above that, whatever the root level is."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.DEBUG):
            logger.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def configure(level: str) -> None:
    # The lines name no source file, thread or process: skip looking them up for every record
    # (the logging HOWTO's "Optimization"; at INFO there are a few lines per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would record URLs with chat ids and tokens in query strings.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
