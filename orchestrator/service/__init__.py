"""The scheduler service: APScheduler wiring, dispatch, run lifecycle, recovery, shutdown."""
