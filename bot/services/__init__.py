"""Use cases of Switchboard: they take a unit of work, a clock and the catalog of services."""
