"""``python -m gobot``: the same as the ``gobot`` command."""

from gobot.cli import main

if __name__ == "__main__":
    main()
