"""A bench helper process: `--port N`, start a server there, print one line, run until killed."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable


def run_sidecar(description: str | None, start: Callable[[int], Awaitable[str]]) -> None:
    """Parse `--port`, await `start(port)` (it answers the line to print), then wait forever."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port

    async def forever() -> None:
        print(await start(port), flush=True)
        await asyncio.Event().wait()

    asyncio.run(forever())
