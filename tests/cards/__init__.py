"""Tests of bot.cards."""
