"""What a request may ask for: the generators' spec models and CSV reading. No Flask, Redis, RQ or matplotlib."""
