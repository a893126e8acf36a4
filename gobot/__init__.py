"""gobot: a plugin-based trading bot framework. The core sequences plugins; plugins do the work."""

__version__ = "0.1.0"
