"""Teams tabs: web pages served by the bot (My Sessions, the supervisor board) with Teams SSO."""
