"""The HTTP API (`serve --http`): JSON over the use cases, Prometheus metrics, health."""
