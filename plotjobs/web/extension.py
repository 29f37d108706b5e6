"""What the running web app holds: its settings, Redis client, event hub, RabbitMQ publisher and request metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from redis import Redis

from plotjobs.config import Settings

if TYPE_CHECKING:
    from plotjobs.broker.amqp import Publisher
    from plotjobs.web.events import EventHub
    from plotjobs.web.request_metrics import RequestMetrics

EXTENSION_KEY = "plotjobs"


def current_redis() -> Redis:
    """The Redis client of the running app."""
    client: Redis = current_app.extensions[EXTENSION_KEY]["redis"]
    return client


def current_settings() -> Settings:
    """The settings of the running app."""
    settings: Settings = current_app.extensions[EXTENSION_KEY]["settings"]
    return settings


def current_event_hub() -> EventHub:
    """The running app's subscriber to job events."""
    hub: EventHub = current_app.extensions[EXTENSION_KEY]["events"]
    return hub


def current_request_metrics() -> RequestMetrics:
    """The running app's request histogram."""
    request_metrics: RequestMetrics = current_app.extensions[EXTENSION_KEY]["request_metrics"]
    return request_metrics


def current_publisher() -> Publisher:
    """The publisher of the running app (it exists when BROKER_URL is set)."""
    publisher: Publisher | None = current_app.extensions[EXTENSION_KEY].get("publisher")
    if publisher is None:
        raise RuntimeError("no publisher: BROKER_URL is not set")
    return publisher
