"""What the use cases work with, and the audit of every write they make."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from orchestrator.clock import utc_now
from orchestrator.errors import OrchestratorError
from orchestrator.store.facade import Store

if TYPE_CHECKING:
    from orchestrator.engine.contract import Engine
    from orchestrator.hostpaths import SelfContainer
    from orchestrator.runner import LaunchSettings, RunLauncher


@dataclass
class Backends:
    """The store and the engine side, each opened when a use case first needs it (a CLI
    command that lists jobs must work while the engine is away)."""

    open_store: Callable[[], Store]
    engine: Callable[[], Engine]
    where: Callable[[], SelfContainer]
    launch_settings: Callable[[], LaunchSettings]
    launcher: Callable[[], RunLauncher]
    secrets_dir: str
    clock: Callable[[], datetime] = utc_now

    @cached_property
    def store(self) -> Store:
        return self.open_store()


@dataclass
class Audited:
    """The writes of one actor: each is recorded with its result, also when it fails."""

    backends: Backends
    actor: str

    @contextmanager
    def audit(self, action: str, target: str | None) -> Iterator[list[str]]:
        """Record `action` on `target`; the block may append a summary of what it did."""
        summary: list[str] = []
        try:
            yield summary
        except OrchestratorError as error:
            self._record(action, target, f"error: {error}")
            raise
        self._record(action, target, "; ".join(["ok", *summary]))

    def _record(self, action: str, target: str | None, result: str) -> None:
        self.backends.store.audit(
            at=self.backends.clock(),
            actor=self.actor,
            action=action,
            target=target,
            result=result,
        )
