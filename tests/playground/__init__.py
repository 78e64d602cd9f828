"""Test harness for the Microsoft 365 Agents Playground (see harness.py)."""
