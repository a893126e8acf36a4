"""The host: finds plugins, calls their hooks, and makes the one entry decision (live and backtest)."""
