"""A running bot: the cycle and its phases, the context plugins see, portfolio, state, audit and alerts.

``Bot`` (``gobot.run.bot``) is made of parts, one module each (context, requests, versions,
summary, disk, confirm, alerting). A part holds its bot and reads what it needs from it; it names
the bot's type ``RunningBot`` instead of importing ``Bot``, so imports go one way only, from the
bot down to its parts (``tests/test_guards.py`` refuses import cycles, type-only ones included).
"""

from typing import Any, TypeAlias

#: The ``gobot.run.bot.Bot`` a part belongs to (named, not imported: the bot imports its parts).
RunningBot: TypeAlias = Any
