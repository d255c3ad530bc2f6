"""Durable storage internals: the SQLite table, its thread, and what is stored when."""
