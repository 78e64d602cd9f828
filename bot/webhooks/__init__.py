"""Web-request templates: HTTP calls to other systems on a task's ringing, accepted, terminated
and concluded moments, from a durable outbox, in order per task, at least once.

See README.md in this package for the services-file syntax and the delivery guarantees.
This package's `model`, `settings`, `template`, `signing` and `outbox` modules are free of
aiohttp (the domain and the use cases import them); only `sender` talks HTTP.
"""
