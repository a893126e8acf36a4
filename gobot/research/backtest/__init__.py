"""The backtester: the engine (vectorized and event paths), the plugin gate, setup and report."""
