"""A running bot: the cycle and its phases, the context plugins see, portfolio, state, audit and alerts."""
