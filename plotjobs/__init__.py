"""plotjobs: content generated asynchronously; Flask enqueues, RQ workers render, Redis holds queue and results.

The layers are the folders (docs/design.md): ``spec`` -> ``generators``/``render`` -> ``queue`` ->
``worker``, ``web``, ``broker``, ``cli``; ``keys``, ``errors`` and ``config`` are shared by all.
"""
