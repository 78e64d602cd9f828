"""The supervisor board's HTTP surface: JSON, live stream, actions (bot/services/board.py)."""
