"""Switchboard package."""
