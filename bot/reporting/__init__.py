"""Reporting export over HTTP: sessions and events, JSON or CSV, behind the API keys."""
