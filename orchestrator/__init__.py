"""Cron jobs as sibling containers on the host's Docker engine."""

__version__ = "0.1.0"
