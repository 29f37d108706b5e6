"""Run one render worker: ``python worker.py`` (settings from the environment)."""

from plotjobs.cli.main import run_worker

if __name__ == "__main__":
    run_worker()
