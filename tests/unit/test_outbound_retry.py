"""OutboundSender on a fake clock: Retry-After, jittered backoff, no retry on 4xx, order per key."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Mapping
from email.utils import formatdate

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bot.teams.outbound import (
    OutboundGaveUp,
    OutboundHTTPError,
    OutboundSender,
    RawResponse,
    RequestFactory,
    RetryPolicy,
)
from bot.teams.ratelimit import RateLimiter, RatePolicy
from tests.standins import FakeMonotonicClock

START = 1000.0
WALL = 1_800_000_000.0
UNLIMITED = RatePolicy(per_key=(), tenant=())

Outcome = RawResponse | BaseException


def ok(body: bytes = b'{"id": "1"}') -> RawResponse:
    return 200, {}, body


def status(code: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> RawResponse:
    return code, dict(headers or {}), body


class Script:
    """A request factory answering from a list of outcomes; records when each attempt ran."""

    def __init__(
        self,
        clock: FakeMonotonicClock,
        *outcomes: Outcome,
        label: str = "",
        log: list[str] | None = None,
    ) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.label = label
        self.log = log
        self.times: list[float] = []

    async def __call__(self) -> RawResponse:
        self.times.append(self.clock.now() - START)
        if self.log is not None:
            self.log.append(f"{self.label}@{self.clock.now() - START:g}")
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def make_sender(
    clock: FakeMonotonicClock,
    *,
    policy: RatePolicy = UNLIMITED,
    retry: RetryPolicy | None = None,
    seed: int = 7,
) -> OutboundSender:
    return OutboundSender(
        RateLimiter(clock, policy),
        clock,
        retry=retry,
        rng=random.Random(seed),
        wall_clock=lambda: WALL + clock.now() - START,
    )


async def test_success_first_time() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    response = await clock.run(sender.call("c", Script(clock, ok())))
    assert (response.status, response.json(), response.attempts) == (200, {"id": "1"}, 1)
    assert sender.stats.attempts == 1
    assert sender.pending == 0


async def test_429_retry_after_seconds_is_honoured() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    script = Script(clock, status(429, {"Retry-After": "3"}), ok())
    response = await clock.run(sender.call("c", script))
    assert response.attempts == 2
    assert script.times == [0.0, 3.0]
    assert sender.stats.throttled == 1
    assert list(sender.stats.retry_after_waits) == [3.0]


async def test_retry_after_http_date_and_lowercase_header() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    when = formatdate(WALL + 12, usegmt=True)
    script = Script(clock, status(503, {"retry-after": when}), ok())
    await clock.run(sender.call("c", script))
    assert script.times == [0.0, 12.0]


async def test_fractional_retry_after() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    script = Script(clock, status(429, {"Retry-After": "0.015"}), ok())
    await clock.run(sender.call("c", script))
    assert script.times == pytest.approx([0.0, 0.015])


async def test_retry_after_is_capped() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock, retry=RetryPolicy(max_retry_after=60.0))
    script = Script(clock, status(429, {"Retry-After": "86400"}), ok())
    await clock.run(sender.call("c", script))
    assert script.times == [0.0, 60.0]


@pytest.mark.parametrize("code", [412, 429, 502, 503, 504])
async def test_retryable_statuses(code: int) -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    response = await clock.run(sender.call("c", Script(clock, status(code), status(code), ok())))
    assert response.attempts == 3


async def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    clock = FakeMonotonicClock(START)
    policy = RetryPolicy()
    sender = make_sender(clock, retry=policy, seed=11)
    with pytest.raises(OutboundGaveUp) as caught:
        await clock.run(sender.call("c", Script(clock, status(503))))
    assert caught.value.attempts == 12
    assert caught.value.last_status == 503
    assert "12 attempts" in str(caught.value) and "503" in str(caught.value)
    bounds = [min(30.0, 0.5 * 2 ** (n - 1)) for n in range(1, 12)]
    assert [policy.backoff_bound(n) for n in range(1, 12)] == bounds
    assert len(clock.sleeps) == 11
    assert all(0.0 <= s <= b for s, b in zip(clock.sleeps, bounds, strict=True))
    expected = random.Random(11)
    assert clock.sleeps == [expected.uniform(0.0, b) for b in bounds]
    assert len(set(clock.sleeps)) == 11
    assert sender.stats.gave_up == 1
    assert sender.stats.attempts == 12


async def test_backoff_statistics_stay_under_the_bound() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock, retry=RetryPolicy(max_attempts=2), seed=3)
    for _ in range(300):
        with pytest.raises(OutboundGaveUp):
            await clock.run(sender.call(None, Script(clock, status(502))))
    assert len(clock.sleeps) == 300
    assert max(clock.sleeps) <= 0.5
    assert 0.2 < sum(clock.sleeps) / len(clock.sleeps) < 0.3


@pytest.mark.parametrize(
    ("code", "body", "error_code"),
    [
        (
            403,
            b'{"error": {"code": "MessageWritesBlocked", "message": "blocked"}}',
            "MessageWritesBlocked",
        ),
        (404, b'{"error": {"code": "NotFound"}}', "NotFound"),
        (400, b"not json", None),
        (500, b"", None),
    ],
)
async def test_other_errors_are_not_retried(code: int, body: bytes, error_code: str | None) -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    script = Script(clock, status(code, body=body), ok())
    with pytest.raises(OutboundHTTPError) as caught:
        await clock.run(sender.call("c", script))
    assert caught.value.status == code
    assert caught.value.code == error_code
    assert caught.value.attempts == 1
    assert script.times == [0.0]
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientConnectionError("refused"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut"),
        TimeoutError(),
    ],
)
async def test_connection_errors_are_retried(error: BaseException) -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    response = await clock.run(sender.call("c", Script(clock, error, error, ok())))
    assert response.attempts == 3
    assert sender.stats.connection_errors == 2


async def test_connection_errors_until_give_up_name_the_last_error() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(OutboundGaveUp) as caught:
        await clock.run(sender.call("conv-9", Script(clock, aiohttp.ServerDisconnectedError())))
    assert caught.value.last_status is None
    assert isinstance(caught.value.last_error, aiohttp.ServerDisconnectedError)
    assert "conv-9" in str(caught.value) and "ServerDisconnectedError" in str(caught.value)


async def test_raise_for_status_errors_are_judged_by_status() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)

    def failure(code: int) -> aiohttp.ClientResponseError:
        url = URL("http://127.0.0.1/v3")
        info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
        return aiohttp.ClientResponseError(info, (), status=code)

    response = await clock.run(sender.call("c", Script(clock, failure(503), ok())))
    assert response.attempts == 2
    with pytest.raises(OutboundHTTPError) as caught:
        await clock.run(sender.call("c", Script(clock, failure(403), ok())))
    assert caught.value.status == 403


async def test_programming_errors_propagate_at_once() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    script = Script(clock, ValueError("bug"), ok())
    with pytest.raises(ValueError, match="bug"):
        await clock.run(sender.call("c", script))
    assert script.times == [0.0]


async def test_order_is_kept_per_key_under_retries() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    log: list[str] = []

    def scripted(label: str, *outcomes: Outcome) -> Script:
        return Script(clock, *outcomes, label=label, log=log)

    async def scenario() -> list[int]:
        tasks = [
            sender.submit("c1", scripted("A", status(429, {"Retry-After": "1"}), ok())),
            sender.submit("c1", scripted("B", status(503), status(503), ok())),
            sender.submit("c2", scripted("X", ok())),
            sender.submit("c1", scripted("C", ok())),
        ]
        return [response.attempts for response in await asyncio.gather(*tasks)]

    attempts = await clock.run(scenario())
    assert attempts == [2, 3, 1, 1]
    c1 = [entry for entry in log if entry[0] in "ABC"]
    assert [entry[0] for entry in c1] == ["A", "A", "B", "B", "B", "C"]
    assert log.index("X@0") < log.index(c1[1])


async def test_failed_request_does_not_block_the_queue() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    blocked = sender.submit("c", Script(clock, status(403)))
    after = sender.submit("c", Script(clock, ok()))
    done = await clock.run(asyncio.gather(blocked, after, return_exceptions=True))
    assert isinstance(done[0], OutboundHTTPError)
    assert not isinstance(done[1], BaseException) and done[1].status == 200


async def test_cancelled_request_lets_the_next_one_go() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    first = Script(clock, status(429, {"Retry-After": "5"}), ok())
    second = Script(clock, ok())
    task_one = sender.submit("c", first)
    task_two = sender.submit("c", second)
    await clock.advance(1.0)
    task_one.cancel()
    response = await clock.run(task_two)
    assert response.status == 200
    assert first.times == [0.0]
    assert second.times == [1.0]


async def test_random_failures_keep_order_and_one_at_a_time_per_key() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock, policy=RatePolicy(per_key=(), tenant=()))
    rnd = random.Random(99)
    delivered: dict[str, list[int]] = defaultdict(list)
    in_flight: dict[str, int] = defaultdict(int)
    overlaps: list[str] = []

    def factory(key: str, number: int) -> RequestFactory:
        outcomes: list[Outcome] = []
        for _ in range(rnd.randint(0, 3)):
            choices: list[Outcome] = [
                status(429, {"Retry-After": str(rnd.randint(0, 2))}),
                status(503),
                aiohttp.ClientConnectionError(),
            ]
            outcomes.append(rnd.choice(choices))
        outcomes.append(ok())
        script = Script(clock, *outcomes)

        async def attempt() -> RawResponse:
            in_flight[key] += 1
            if in_flight[key] > 1:
                overlaps.append(key)
            try:
                await clock.sleep(rnd.random() / 10)
                result = await script()
            finally:
                in_flight[key] -= 1
            if result[0] == 200:
                delivered[key].append(number)
            return result

        return attempt

    tasks = [sender.submit(f"c{k}", factory(f"c{k}", n)) for n in range(15) for k in range(20)]
    await clock.run(asyncio.gather(*tasks))
    assert overlaps == []
    assert {key: numbers for key, numbers in delivered.items()} == {
        f"c{k}": list(range(15)) for k in range(20)
    }
    await sender.drain()
    assert sender.pending == 0


async def test_sender_paces_attempts_through_the_limiter() -> None:
    clock = FakeMonotonicClock(START)
    sender = OutboundSender(RateLimiter(clock), clock, rng=random.Random(1))
    scripts = [Script(clock, ok()) for _ in range(16)]
    await clock.run(asyncio.gather(*(sender.call("c", s) for s in scripts)))
    assert [s.times[0] for s in scripts] == [0.0] * 7 + [1.0] + [2.0] * 7 + [3.0]


async def test_retries_take_limiter_slots_too() -> None:
    clock = FakeMonotonicClock(START)
    sender = OutboundSender(RateLimiter(clock), clock, rng=random.Random(1))
    script = Script(clock, *([status(429, {"Retry-After": "0"})] * 8), ok())
    await clock.run(sender.call("c", script))
    assert script.times == [0.0] * 7 + [1.0, 2.0]


async def test_cancelling_the_caller_does_not_drop_the_request() -> None:
    clock = FakeMonotonicClock(START)
    sender = make_sender(clock)
    script = Script(clock, status(503, {"Retry-After": "2"}), ok())
    caller = asyncio.ensure_future(sender.call("c", script))
    await clock.advance(1.0)
    caller.cancel()
    await clock.advance(2.0)
    assert caller.cancelled()
    assert script.times == [0.0, 2.0]
    assert sender.pending == 0
