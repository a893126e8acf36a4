"""``python -m gobot``: the same as the ``gobot`` command."""

from gobot.cli import run

if __name__ == "__main__":
    run()
