"""The running job's id on every log line written while RQ runs it in this process."""

from __future__ import annotations

import logging

from rq import get_current_job


class CurrentJobFilter(logging.Filter):
    """Adds ``job_id`` to a record logged while a job runs, unless the record names one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only add the field."""
        if not hasattr(record, "job_id"):
            job = get_current_job()
            if job is not None:
                record.job_id = job.id
        return True
