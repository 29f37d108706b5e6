"""Who still wants a job: its submitters' cancel tokens, so nobody cancels a render another client shares.

Each submission is answered with a random cancel token; the job's set ``plotjobs:interest:<id>``
holds the SHA-256 of each (never a token itself). A token withdraws its own submitter's interest,
once; the render is canceled only when no interest remains. A job with a random id has exactly one
submitter, a deduplicated one as many as asked for it. Jobs a RabbitMQ producer submitted have none.
"""

from __future__ import annotations

import hashlib
import secrets

from redis import Redis

from plotjobs import keys
from plotjobs.config import Settings
from plotjobs.errors import CancelTokenInvalid

TOKEN_BYTES = 32

# The member and the expiry together, atomically: as a script that is 3 commands, as MULTI/EXEC 4.
_ADD_EXPIRING = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record(connection: Redis, settings: Settings, job_id: str) -> str:
    """A new cancel token for one more submitter of ``job_id``; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # As long as the job itself can be read: its result or its failure.
    ttl = max(settings.result_ttl, settings.failure_ttl)
    connection.register_script(_ADD_EXPIRING)(keys=[keys.interest(job_id)], args=[_digest(token), ttl])
    return token


def withdraw(connection: Redis, job_id: str, token: str) -> int:
    """Withdraw the interest of the submitter holding ``token``; how many remain. CancelTokenInvalid if none."""
    key = keys.interest(job_id)
    with connection.pipeline() as pipe:
        pipe.srem(key, _digest(token))
        pipe.scard(key)
        removed, remaining = pipe.execute()
    if not removed:
        raise CancelTokenInvalid(job_id)
    return int(remaining)
