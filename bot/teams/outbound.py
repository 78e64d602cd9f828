"""Paced, retrying sender that keeps per-conversation order for Bot Connector and Graph calls."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from bot import jsonio
from bot.domain.retry import Backoff, parse_retry_after
from bot.teams.clock import Clock
from bot.teams.ratelimit import Priority, RateLimiter

if TYPE_CHECKING:
    from bot.teams.tokens import TokenProvider

log = logging.getLogger(__name__)

RawResponse = tuple[int, Mapping[str, str], bytes]
"""One HTTP attempt's outcome: (status, headers, body)."""

RequestFactory = Callable[[], Awaitable[RawResponse]]
"""Performs one HTTP attempt each time it is called; may raise aiohttp client errors."""

RETRYABLE_STATUSES: frozenset[int] = frozenset({412, 429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts, full-jitter exponential backoff, Retry-After ceiling."""

    max_attempts: int = 12
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_cap < 0 or self.max_retry_after < 0:
            raise ValueError("backoff and Retry-After bounds must not be negative")

    @property
    def backoff(self) -> Backoff:
        return Backoff(first=self.backoff_base, cap=self.backoff_cap)

    def backoff_bound(self, attempt: int) -> float:
        """Upper bound of the jittered sleep after failed attempt number ``attempt`` (1-based)."""
        return self.backoff.bound(attempt)


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """A final (non-retryable, below 400) answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int

    def json(self) -> Any:
        """The body parsed as JSON, or None when empty."""
        return jsonio.loads(self.body) if self.body.strip() else None

    def id_of(self, operation: str, protocol_error: type[Exception]) -> str:
        """The `id` of what the call created; `protocol_error` when the answer names none."""
        try:
            data = self.json()
        except ValueError as exc:
            raise protocol_error(f"{operation}: the answer is not JSON") from exc
        identifier = data.get("id") if isinstance(data, dict) else None
        if not isinstance(identifier, str) or not identifier:
            raise protocol_error(f"{operation}: the answer has no id")
        return identifier


class OutboundError(Exception):
    """Base of the errors raised by :class:`OutboundSender`."""


class OutboundHTTPError(OutboundError):
    """A non-retryable status of 400 or more (e.g. 403 MessageWritesBlocked, 404, 500)."""

    def __init__(
        self, status: int, headers: Mapping[str, str], body: bytes, *, attempts: int
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.attempts = attempts
        self.code, self.error_message = _error_code(body)
        detail = f" {self.code}" if self.code else ""
        super().__init__(f"HTTP {status}{detail}")


class OutboundGaveUp(OutboundError):
    """Every attempt failed with a retryable status or a connection error."""

    def __init__(
        self,
        bucket_key: str | None,
        attempts: int,
        last_status: int | None,
        last_error: BaseException | None,
    ) -> None:
        self.bucket_key = bucket_key
        self.attempts = attempts
        self.last_status = last_status
        self.last_error = last_error
        if last_status is not None:
            last = f"last status {last_status}"
        else:
            last = f"last error {type(last_error).__name__}: {last_error}"
        super().__init__(f"gave up on bucket {bucket_key!r} after {attempts} attempts ({last})")


@dataclass(slots=True)
class OutboundStats:
    """Counters for monitoring and tests."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    throttled: int = 0
    connection_errors: int = 0
    gave_up: int = 0
    retry_after_waits: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    """The most recent Retry-After waits honoured (seconds)."""


class OutboundSender:
    """Every outbound Bot Connector / Graph request goes through here.

    - paces each attempt through the limiter (the bucket key's windows + the tenant bucket);
    - retries 429/412/502/503/504 and connection errors, sleeping Retry-After when given,
      otherwise full-jitter exponential backoff, up to ``RetryPolicy.max_attempts``, then
      raises :class:`OutboundGaveUp`; other statuses of 400 or more raise
      :class:`OutboundHTTPError` at once;
    - keeps order per bucket key: requests with the same key go out one after another in
      submission order (retries included); different keys, and ``None``, run concurrently.

    Retrying a POST after a connection error may duplicate it when the first attempt reached
    the server; Teams and Graph offer no idempotency key, so delivery is at least once.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock
        self._tails: dict[str, asyncio.Task[OutboundResponse]] = {}
        self._waiting: dict[str, int] = {}  # requests per bucket key not finished yet
        self._inflight: set[asyncio.Task[OutboundResponse]] = set()
        self.stats = OutboundStats()

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def pending(self) -> int:
        """Requests submitted and not finished yet."""
        return len(self._inflight)

    async def call(
        self, bucket_key: str | None, request_factory: RequestFactory,
        priority: int = Priority.NORMAL,
    ) -> OutboundResponse:
        """Send one request (with retries) and return its final answer below 400.

        Cancelling the caller does not withdraw the request: once submitted it goes out
        (cancel the task from :meth:`submit` to withdraw a request that has not finished).
        """
        return await asyncio.shield(self.submit(bucket_key, request_factory, priority))

    def submit(
        self, bucket_key: str | None, request_factory: RequestFactory,
        priority: int = Priority.NORMAL,
    ) -> asyncio.Task[OutboundResponse]:
        """Queue a request now (order is fixed at this call) and return its task. ``priority``
        orders it against other keys' requests when the tenant budget is short; within a
        bucket key, order is submission order whatever the priority."""
        loop = asyncio.get_running_loop()
        self.stats.calls += 1
        if bucket_key is None:
            task = loop.create_task(self._send(None, request_factory, priority))
        else:
            previous = self._tails.get(bucket_key)
            task = loop.create_task(
                self._send_after(previous, bucket_key, request_factory, priority))
            self._tails[bucket_key] = task
            self._waiting[bucket_key] = self._waiting.get(bucket_key, 0) + 1
            task.add_done_callback(functools.partial(self._forget_tail, bucket_key))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def drain(self) -> None:
        """Wait until every submitted request has finished (results are left to their owners)."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    async def close(self, grace: float) -> int:
        """At shutdown: let requests finish for `grace` seconds, then cancel the rest.

        Safe because every request stems from a durable job whose lease runs out, so the
        job runs again after the restart. Returns how many requests were cancelled.
        """
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        pending = list(self._inflight)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    def _forget_tail(self, bucket_key: str, task: asyncio.Task[OutboundResponse]) -> None:
        if self._tails.get(bucket_key) is task:
            del self._tails[bucket_key]
        left = self._waiting.get(bucket_key, 1) - 1
        if left > 0:
            self._waiting[bucket_key] = left
        else:
            self._waiting.pop(bucket_key, None)

    async def _send_after(
        self,
        previous: asyncio.Task[OutboundResponse] | None,
        bucket_key: str,
        request_factory: RequestFactory,
        priority: int,
    ) -> OutboundResponse:
        if previous is not None and not previous.done():
            # Wait for the previous request of this key whatever its outcome; never cancel it.
            await asyncio.wait({previous})
        return await self._send(bucket_key, request_factory, priority)

    async def _send(
        self, bucket_key: str | None, request_factory: RequestFactory, priority: int
    ) -> OutboundResponse:
        policy = self._retry
        last_status: int | None = None
        last_error: BaseException | None = None
        for attempt in range(1, policy.max_attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
            run = self._waiting.get(bucket_key, 1) if bucket_key is not None else 1
            await self._limiter.acquire(bucket_key, priority, run=run)
            self.stats.attempts += 1
            outcome = await _attempt(request_factory)
            retry_after: float | None = None
            if isinstance(outcome, BaseException):
                self.stats.connection_errors += 1
                last_status, last_error = None, outcome
                log.info(
                    "outbound attempt %d for %r failed: %s",
                    attempt,
                    bucket_key,
                    type(outcome).__name__,
                )
            else:
                status, headers, body = outcome
                if status not in policy.retry_statuses:
                    if status >= 400:
                        raise OutboundHTTPError(status, headers, body, attempts=attempt)
                    return OutboundResponse(status, headers, body, attempt)
                last_status, last_error = status, None
                if status == 429:
                    self.stats.throttled += 1
                log.info("outbound attempt %d for %r answered %d", attempt, bucket_key, status)
                retry_after = parse_retry_after(_header(headers, "Retry-After"), self._wall_clock())
            if attempt == policy.max_attempts:
                break
            if retry_after is not None:
                delay = min(retry_after, policy.max_retry_after)
                self.stats.retry_after_waits.append(delay)
            else:
                delay = policy.backoff.wait(attempt, self._rng)
            await self._clock.sleep(delay)
        self.stats.gave_up += 1
        log.warning(
            "outbound request for %r gave up after %d attempts", bucket_key, policy.max_attempts
        )
        raise OutboundGaveUp(bucket_key, policy.max_attempts, last_status, last_error)


def json_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    tokens: TokenProvider | None = None,
    timeout: float = 30.0,
) -> RequestFactory:
    """A request factory for one JSON call on a shared session.

    ``url`` strings are taken as already percent-encoded (quote path segments yourself), so
    ids such as ``19:abc@thread.v2`` reach the server exactly as written. Each attempt asks
    ``tokens`` for a bearer token (so retries pick up a renewed one); without ``tokens`` no
    Authorization header is sent (local mode).
    """
    target = url if isinstance(url, URL) else URL(url, encoded=True)
    if params:
        target = target.extend_query(params)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def attempt() -> RawResponse:
        headers = {"Accept": "application/json"}
        if tokens is not None:
            headers["Authorization"] = f"Bearer {await tokens.get_token()}"
        async with session.request(
            method, target, json=body, headers=headers, timeout=client_timeout
        ) as response:
            return response.status, response.headers, await response.read()

    return attempt


async def _attempt(request_factory: RequestFactory) -> RawResponse | BaseException:
    """Run one attempt; return the connection error instead of raising it."""
    try:
        return await request_factory()
    except aiohttp.ClientResponseError as exc:
        # A factory that used raise_for_status(): judge by its status; headers are lost.
        return exc.status, {}, b""
    except (aiohttp.ClientError, TimeoutError) as exc:
        return exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _error_code(body: bytes) -> tuple[str | None, str | None]:
    """The ``error.code`` / ``error.message`` of a Bot Connector or Graph error body."""
    try:
        data = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )
