"""Conversational flows on top of the use cases: commands, card actions, views (no Bot SDK)."""
