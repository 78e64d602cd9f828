"""Pytest fixtures for the Agents Playground harness.

Tests in ``tests/playground/`` get them from ``conftest.py`` here. Elsewhere, import the fixture
into a conftest.py or test module::

    from tests.playground.fixtures import playground_factory  # noqa: F401

which needs the repo root on ``sys.path``: ``python -m pytest`` does that, the ``pytest`` script
does not (add ``pythonpath = ["."]`` to ``[tool.pytest.ini_options]``; checked both ways).
Then::

    async def test_something(playground_factory, aiohttp_server):
        server = await aiohttp_server(make_bot_app())
        pg = await playground_factory(str(server.make_url("/api/messages")))
        await pg.install()
        await pg.wait_for_message("Welcome")

Start the bot first: the playground calls it as soon as you act, and nothing is retried.
The fixture skips the test (with the reason) only if Node.js or the npm package is missing; any
other startup problem is an error. Every playground it started is stopped at teardown, also when
the test failed; its diagnostics (stream events, log tail) are printed then, which pytest shows
only for failed tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.support.node import skip_without_node

from .harness import Playground, PlaygroundUnavailable

PlaygroundFactory = Callable[..., Awaitable[Playground]]

__all__ = ["PlaygroundFactory", "playground_factory"]


@pytest.fixture
async def playground_factory() -> AsyncIterator[PlaygroundFactory]:
    """``await playground_factory(bot_url, **Playground_kwargs)`` -> a started ``Playground``."""
    skip_without_node("@microsoft/m365agentsplayground")

    started: list[Playground] = []

    async def factory(bot_endpoint: str, **kwargs: Any) -> Playground:
        playground = Playground(bot_endpoint, **kwargs)
        started.append(playground)
        try:
            await playground.start()
        except PlaygroundUnavailable as exc:
            pytest.skip(f"Microsoft 365 Agents Playground unavailable: {exc}")
        return playground

    try:
        yield factory
    finally:
        for playground in reversed(started):
            if playground.port is not None:
                print(playground.diagnostics())
            await playground.stop()
