"""Loopback servers that speak real protocols, for tests, benches and chaos tests (127.0.0.1, random port)."""
