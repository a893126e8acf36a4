"""Research: backtests, market data for them, the strategy optimizer, synthetic data and LLM ideas."""
