"""Retrieval quality: metrics, and the engine that measures configurations of the product
through its own search path (``wardrobe evaluate`` is its command line)."""
