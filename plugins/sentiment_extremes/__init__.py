"""sentiment_extremes (issue 22): being built."""


class SentimentExtremes:
    """Placeholder: no hooks yet."""
