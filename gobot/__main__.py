"""``python -m gobot``: the same as the ``gobot`` command."""

from .cli import main

if __name__ == "__main__":
    main()
