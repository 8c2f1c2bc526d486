"""Repositories: one module per store (queues, PostgreSQL, Redis, the table archive)."""
