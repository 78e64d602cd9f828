"""Email tasks: the inbound SMTP listener, MIME parsing, and replies through the relay."""
