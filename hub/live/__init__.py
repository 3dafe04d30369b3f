"""Live view: core-NATS subscriber, bounded live cache, WebSocket fan-out to the dashboard."""
