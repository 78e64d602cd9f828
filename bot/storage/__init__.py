"""Storage backends behind the ports: SQLite (embedded default) and Azure Cosmos DB."""
