"""Both storage backends for the web-request tests (fixtures of tests/contract)."""

from __future__ import annotations

from tests.contract.conftest import backend, cosmos_server

__all__ = ["backend", "cosmos_server"]
