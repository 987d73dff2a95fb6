"""Catalog persistence: SQLite metadata and sessions, the USearch vector index, catalog sources."""
