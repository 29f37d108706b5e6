"""The job layer: enqueue, the task RQ runs, progress, results, dedupe, limits. RQ lives here and in ``worker``."""
