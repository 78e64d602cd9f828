"""Web-request templates: HTTP calls to other systems on a task's ringing, accepted, terminated
and concluded moments, from a durable outbox, in order per task, at least once.

See README.md in this package for the services-file syntax and the delivery guarantees.
The layers: what a template and a delivery are, rendering and signing live in
`bot.domain.webhooks`; queueing with the event and recording outcomes in `bot.services.outbox`;
this package reads the services file (`settings`) and talks HTTP (`sender`).
"""
