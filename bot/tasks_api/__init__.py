"""The external task API under /api/v1/tasks, for automations such as Power Automate."""
