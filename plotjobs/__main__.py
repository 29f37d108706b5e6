"""``python -m plotjobs`` is the ``plotjobs`` command."""

from plotjobs.cli.main import main

main()
