"""Processes that render: the RQ render worker, its supervisor, and the sweeper that recovers lost jobs."""
