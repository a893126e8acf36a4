"""market_sentiment (issue 22): being built."""


class MarketSentiment:
    """Placeholder: no hooks yet."""
