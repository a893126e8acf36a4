"""gobot's built-in plugins, installed as ``gobot_plugins``; each folder is one plugin, one concern,
registered through the ``gobot`` entry-point group exactly like a third-party plugin."""
