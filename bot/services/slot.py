"""The engine of a request handler whose routes exist before the store is open."""

from __future__ import annotations

from bot.services.engine import Engine
from bot.services.ports import StoreUnavailable


class EngineSlot:
    """Holds the engine once `attach`ed; asked for it before, a request meets `StoreUnavailable`
    (a 503 saying `starting`)."""

    def __init__(self, starting: str) -> None:
        self._engine: Engine | None = None
        self._starting = starting

    def attach(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreUnavailable(self._starting)
        return self._engine
