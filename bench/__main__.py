"""`python -m bench`: run every phase and write bench/results/latest.{json,md} and latency.png."""

from __future__ import annotations

from bench.driver import run_sync

if __name__ == "__main__":
    run_sync()
