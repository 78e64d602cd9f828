"""SQLite schema, versioned in code: each migration runs once, in order, at start-up."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE agents (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, registered INTEGER NOT NULL,
            data TEXT NOT NULL)""",
        """CREATE TABLE agent_services (
            agent_id TEXT NOT NULL, service_id TEXT NOT NULL,
            PRIMARY KEY (service_id, agent_id))""",
        "CREATE INDEX agent_services_agent ON agent_services (agent_id)",
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, service_id TEXT NOT NULL,
            state TEXT NOT NULL, priority INTEGER NOT NULL, enqueued_at REAL NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX tasks_queue ON tasks (service_id, state, priority DESC, enqueued_at, id)",
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, task_id TEXT NOT NULL,
            agent_id TEXT NOT NULL, service_id TEXT NOT NULL, phase TEXT NOT NULL,
            offered_at REAL NOT NULL, connected_at REAL, chat_id TEXT, card_id TEXT,
            search TEXT NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX sessions_task ON sessions (task_id, offered_at)",
        "CREATE INDEX sessions_agent ON sessions (agent_id, offered_at DESC)",
        "CREATE INDEX sessions_connected ON sessions (phase, connected_at)",
        "CREATE INDEX sessions_chat ON sessions (chat_id) WHERE chat_id IS NOT NULL",
        "CREATE INDEX sessions_card ON sessions (card_id) WHERE card_id IS NOT NULL",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, name TEXT NOT NULL,
            task_id TEXT, session_id TEXT, agent_id TEXT, service_id TEXT,
            data TEXT NOT NULL)""",
        "CREATE INDEX events_task ON events (task_id, seq)",
        """CREATE TABLE timers (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, kind TEXT NOT NULL,
            ref TEXT NOT NULL, due_at REAL NOT NULL, lease_until REAL,
            attempts INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL)""",
        "CREATE INDEX timers_due ON timers (due_at)",
        """CREATE TABLE messages (
            task_id TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,
            agent_id TEXT, at REAL NOT NULL, text TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'message', data TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (task_id, seq))""",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        """CREATE TABLE tags (
            service_id TEXT NOT NULL, tag_key TEXT NOT NULL, tag TEXT NOT NULL,
            uses INTEGER NOT NULL, last_used REAL NOT NULL,
            PRIMARY KEY (service_id, tag_key))""",
    ]),
    (2, [
        # Web requests waiting to be delivered (bot.webhooks), in order per task.
        """CREATE TABLE outbox (
            task_id TEXT NOT NULL, seq INTEGER NOT NULL, version INTEGER NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (task_id, seq))""",
    ]),
    (3, [
        # The availability index (bot.domain.agent.availability): one row per (service,
        # modality) an agent may be offered, with the end of its RONA (ready_at, NULL = none)
        # and its idle time (NULL = idle "forever", sorts first), both in integer microseconds.
        # Rebuilt against the catalog at every start (bot.services.dispatch.index_agents).
        """CREATE TABLE agent_slots (
            service_id TEXT NOT NULL, modality TEXT NOT NULL, agent_id TEXT NOT NULL,
            ready_at INTEGER, idle_at INTEGER,
            PRIMARY KEY (service_id, modality, agent_id)) WITHOUT ROWID""",
        # available(): ready rows in idle order, a range scan stopped by LIMIT (covering).
        """CREATE INDEX agent_slots_pick ON agent_slots
            (service_id, modality, ready_at, idle_at, agent_id)""",
        "CREATE INDEX agent_slots_agent ON agent_slots (agent_id)",
    ]),
]

LATEST = MIGRATIONS[-1][0]

# Tables and indexes that change no shape a build relies on: created at each start where
# missing, not by a migration, so a build that does not know them still opens the file (rolling
# upgrades).
ENSURED = [
    # The change feed (bot/storage/sqlite_changes.py): one row per conversation a commit gave
    # new rows, so instances in other processes wake their chats' WebSockets. Pruned as it grows.
    """CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, origin TEXT NOT NULL)""",
    # Fleet-wide Teams limits (bot.storage.sqlite_fleet): a heartbeat row per instance
    # and a small send log per conversation, both in wall-clock seconds.
    "CREATE TABLE IF NOT EXISTS fleet_instances (id TEXT PRIMARY KEY, seen REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS fleet_sendlog (
        conversation TEXT PRIMARY KEY, version INTEGER NOT NULL, updated REAL NOT NULL,
        data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS fleet_sendlog_updated ON fleet_sendlog (updated)",
    # Tag suggestions with nothing typed yet: the most used, a range read stopped by LIMIT.
    "CREATE INDEX IF NOT EXISTS tags_top ON tags (service_id, uses DESC, last_used DESC)",
    # The reporting export (SqliteSessions.export): a bounded window in offer order.
    "CREATE INDEX IF NOT EXISTS sessions_offered ON sessions (offered_at, id)",
]
