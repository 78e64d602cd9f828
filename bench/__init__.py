"""Load driver and micro-benchmarks for Switchboard: `python -m bench` (make bench)."""
