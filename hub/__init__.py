"""The hub: JetStream ingest into TimescaleDB/PostgreSQL, the query API and the live dashboard."""
