"""The labels on every workload we start: how a scheduler finds its own after a restart.
Pure names, so that checking a setting (cli/context.py) need not import the engine."""

from __future__ import annotations

MANAGED_LABEL = "orchestrator.managed"
JOB_LABEL = "orchestrator.job"
RUN_LABEL = "orchestrator.run"
# One launch of a run (a random token): how a launch whose create or start call timed
# out finds what the engine did meanwhile, even where run ids repeat (two databases).
LAUNCH_LABEL = "orchestrator.launch"
# Ours, so a user's extra container label may not take them.
RESERVED_LABELS = (MANAGED_LABEL, JOB_LABEL, RUN_LABEL, LAUNCH_LABEL)
