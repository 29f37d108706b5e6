"""The optional RabbitMQ adapter (``pika``): imported only when BROKER_URL is set. See docs/rabbitmq.md."""
