"""fear_greed (issue 22): being built."""


class FearGreed:
    """Placeholder: no hooks yet."""
