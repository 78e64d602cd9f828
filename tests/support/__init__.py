"""The test kit: drivers, helpers and fixtures shared by tests/ and bench/.

- `teams.py`: `TeamsAgent`, one agent in Teams driving Switchboard's /api/messages over HTTP
  (the in-process test server of `world.py` or a `python -m bot` process alike).
- `world.py`: `running_world`, the real app on a socket with a Bot Connector stand-in.
- `cards.py`: `find_action`, `find_input`, `card_of`.  `waiting.py`: `eventually`.
- `http.py`: `post_json`.  `cardlog.py`: the session's card collector (`card_log` fixture).
- `logs.py`: `capturing_logs`, `CapturedLogs` (the `captured` fixture: all logs at DEBUG).
- `node.py`: the `needs_node` marker (npm tools in node_modules).
- `fixtures.py`: the pytest plugin (registered in tests/conftest.py).

The stand-ins themselves (Bot Connector, Graph, Entra tokens) live in tests/standins/.
"""
