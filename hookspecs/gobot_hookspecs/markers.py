"""The pluggy markers for project ``gobot``: decorate hook implementations with ``hookimpl``."""

import pluggy

PROJECT_NAME = "gobot"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
