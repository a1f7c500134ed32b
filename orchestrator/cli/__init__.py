"""The admin CLI: the only place that prints or sets exit codes."""
