"""The Swarm backend: each run a `replicated-job` service of one task (see adapter.py)."""

from orchestrator.engine.swarm.adapter import SwarmEngine

__all__ = ["SwarmEngine"]
