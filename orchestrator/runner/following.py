"""Follow a started container to its end: its output (masked, its tail kept), its exit
classified, its timeout kept by the shared timer thread, and a wedged end (a kill the
engine does not carry out) recorded all the same.

Followed live only when someone takes it live (`on_output`: a foreground `jobs run`).
Otherwise the exit is waited for and the output read once after it: the same engine
calls as a bare create, start, wait, logs, remove, where a live stream costs the engine
a follower per run and the stream, which can end early (moby#43860), must be read again
after the exit. Live viewers read the container's own stream (`runs logs --follow`, the
API's SSE), not this one; the engine keeps a stopped container's output until we remove
it. An exec workload or a Swarm service would be followed by the same steps over its
own handle."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from orchestrator.backoff import with_backoff
from orchestrator.engine import ContainerExit, Engine
from orchestrator.engine.errors import ContainerGoneError, EngineError, EngineUnavailableError
from orchestrator.masking import OutputMasker
from orchestrator.policies.outcomes import classify_exit
from orchestrator.records import RunRecord, RunStatus
from orchestrator.runner.timers import Timers
from orchestrator.settings import ENGINE_PATIENCE_SECONDS
from orchestrator.spec import JobSpec
from orchestrator.tailbuffer import TailBuffer
from orchestrator.units import format_duration

if TYPE_CHECKING:
    from orchestrator.runner.launch_settings import LaunchSettings

log = logging.getLogger(__name__)
OutputSink = Callable[[bytes], None]


class Finish(Protocol):
    """Records a run's end (the launcher's `_finish`)."""

    def __call__(
        self, run_id: int, status: RunStatus, spec: JobSpec | None = None, **fields: object
    ) -> RunRecord: ...


class Follower:
    def __init__(
        self, engine: Engine, timers: Timers, settings: LaunchSettings, finish: Finish
    ) -> None:
        self.engine = engine
        self.timers = timers
        self.settings = settings
        self.finish = finish

    def follow(
        self,
        run: RunRecord,
        spec: JobSpec,
        container_id: str,
        on_output: OutputSink | None,
        timeout: float | None,
        masker: OutputMasker | None,
    ) -> RunRecord:
        """The output and the exit, in this thread, recorded as the run's end; a timeout
        is kept by the shared timer thread, which kills the container when it is due."""
        tail = TailBuffer(self.settings.output_limit)

        def deliver(chunk: bytes) -> None:
            if chunk:
                tail.write(chunk)
                if on_output is not None:
                    on_output(chunk)

        def kill_if_running() -> bool:
            if not self.engine.is_running(container_id):
                return False
            self.engine.kill(container_id)
            return True

        def end_wedged() -> bool:
            self._end_wedged(run, spec, container_id)
            return True

        deadline = wedged = None
        if timeout is not None:
            deadline = self.timers.after(timeout, kill_if_running, f"the timeout of run {run.id}")
            wedged = self.timers.after(
                timeout + self.settings.kill_grace_seconds,
                end_wedged,
                f"the end of run {run.id} after its timeout",
            )
        try:
            live = on_output is not None
            if not live:
                exit_ = self._wait_through_outages(container_id)
            if masker is None:
                deliver(b"(output withheld: the job's secrets cannot be read to mask it)\n")
            else:
                try:
                    read = self.engine.follow_output if live else self.engine.output
                    for chunk in read(container_id):
                        deliver(masker.feed(chunk))
                except (ContainerGoneError, EngineError) as error:
                    log.warning("output of run %s cut short: %s", run.id, error)
                finally:
                    deliver(masker.flush())
            if live:
                exit_ = self._wait_through_outages(container_id)
        except ContainerGoneError as gone:
            return self.finish(run.id, RunStatus.FAILED, spec, error=str(gone), **_captured(tail))
        finally:
            for due in (deadline, wedged):
                if due is not None:
                    due.cancel()
        status, reason = classify_exit(
            exit_.exit_code if exit_ is not None else None,
            timed_out=deadline is not None and deadline.settled(),
            oom_killed=exit_ is not None and exit_.oom_killed,
            timeout=spec.timeout,
            memory_limit=spec.resources.memory,
        )
        return self.finish(
            run.id,
            status,
            spec,
            exit_code=exit_.exit_code if exit_ is not None else None,
            error=reason,
            **_captured(tail),
        )

    def _end_wedged(self, run: RunRecord, spec: JobSpec, container_id: str) -> None:
        """The run past its timeout and its kill grace, its container not stopped: it is
        recorded timed_out now; its exit code and output are filled in when the engine
        tells them."""
        grace = self.settings.kill_grace_seconds
        log.warning(
            "run %s of %s: container %s still not stopped %.0fs after its timeout",
            run.id,
            spec.name,
            container_id[:12],
            grace,
            extra={"run": run.id, "job": spec.name},
        )
        self.finish(
            run.id,
            RunStatus.TIMED_OUT,
            spec,
            error=f"timed out after {format_duration(spec.timeout or timedelta())}; the "
            f"engine had not stopped container {container_id[:12]} {grace:.0f}s later "
            "(it may still run)",
        )

    def _wait_through_outages(self, container_id: str) -> ContainerExit | None:
        """engine.wait, riding out an engine that restarts or does not answer for a while."""
        return with_backoff(
            lambda: self.engine.wait(container_id, None),
            retry_on=EngineUnavailableError,
            patience_seconds=ENGINE_PATIENCE_SECONDS,
            what=f"engine unavailable while waiting for {container_id[:12]}",
        )


def _captured(tail: TailBuffer) -> dict[str, object]:
    return {
        "output": tail.text(),
        "output_truncated": tail.truncated,
        "output_limit": tail.limit,
    }
