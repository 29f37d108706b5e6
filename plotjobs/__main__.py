"""``python -m plotjobs`` is the ``plotjobs`` command."""

from plotjobs.cli import main

main()
