"""Domain model of Switchboard: entities, state machines, routing policy and events (no I/O)."""
