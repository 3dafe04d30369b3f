"""Test support: real servers (nats-server from the wheel, PostgreSQL) on free loopback ports."""
