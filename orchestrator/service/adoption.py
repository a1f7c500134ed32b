"""Adoption: runs whose scheduler died are taken over. A run carries its scheduler's id
and a heartbeat; when that scheduler is gone (its process, or its heartbeat), another
one adopts the run: follows its container to the end, records the end it had meanwhile,
or, when no container of it is left, ends it `lost` with the reason."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.engine import Engine, ManagedWorkload
from orchestrator.errors import JobNotFoundError
from orchestrator.policies import chains, notify_events
from orchestrator.policies.ownership import owner_is_dead
from orchestrator.records import RunRecord, RunStatus
from orchestrator.runner import RunLauncher
from orchestrator.runner.identity import here_now, process_exists
from orchestrator.spec import JobSpec, parse_job
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
# A stopped container of a run that ended this long ago has no follower any more.
LEFTOVER_SECONDS = timedelta(seconds=30)
StartRun = Callable[[RunRecord, JobSpec, Callable[[], RunRecord] | None], None]


@dataclass(eq=False, kw_only=True)
class Adoption:
    store: Store
    engine: Engine
    launcher: RunLauncher
    owner: str
    stale_after: timedelta
    clock: Callable[[], datetime]
    start_run: StartRun
    active_ids: Callable[[], set[int]]

    def __post_init__(self) -> None:
        self.here = here_now()
        self.leftover_after = max(LEFTOVER_SECONDS, 2 * self.stale_after)

    def adopt_orphans(self, now: datetime) -> None:
        # Our own runs that no thread of ours follows (a write that failed mid-outage).
        # The threads are asked first: a run that ends meanwhile is no longer unfinished
        # in the database, so it is not taken for forgotten.
        active = self.active_ids()
        candidates, ours = self.store.adoption_candidates(self.owner, now - self.stale_after)
        for run_id in ours:
            if run_id in active:
                continue
            run = self.store.run(run_id)
            if run.status.finished or run.owner != self.owner:
                continue
            log.warning(
                "run %s of %s lost its thread; taking it up again",
                run.id,
                run.job,
                extra={"run": run.id, "job": run.job},
            )
            self.reattach(run)
        for run in candidates:
            if not owner_is_dead(
                run.owner, run.heartbeat_at, now, self.stale_after, self.here, process_exists
            ):
                continue
            if not self.store.adopt(run, self.owner, self.clock()):
                continue  # another scheduler was quicker
            log.warning(
                "adopting run %s of %s from %s",
                run.id,
                run.job,
                run.owner,
                extra={"run": run.id, "job": run.job},
            )
            self.reattach(run)

    def sweep_leftovers(self, now: datetime) -> None:
        """Remove our containers that outlived their run: not running, of a run that
        ended a while ago (`leftover_after`: its follower removes it within a second of
        the end). Such are left when a run's follower died after another scheduler
        cancelled it (replace), or a scheduler was killed between create and record."""
        if self.launcher.settings.keep_containers:
            return
        stopped: dict[int, list[ManagedWorkload]] = {}
        for workload in self.engine.managed():
            if workload.status not in ("running", "restarting") and workload.run_id is not None:
                stopped.setdefault(workload.run_id, []).append(workload)
        # One read for them all: under load most are the containers of runs being
        # started or just ended (a read each was a fifth of the maintenance loop's CPU).
        # A run another database has is not found, and its containers are left alone.
        for run in self.store.runs_ended_before(stopped, now - self.leftover_after):
            for workload in stopped[run.id]:
                if run.job == workload.job and self.engine.discard_unstarted(workload.handle):
                    log.info(
                        "removed container %s left by run %s of %s (%s)",
                        workload.handle[:12],
                        run.id,
                        run.job,
                        run.status.value,
                        extra={"run": run.id, "job": run.job},
                    )

    def reattach(self, run: RunRecord) -> None:
        try:
            spec: JobSpec | None = self.store.job(run.job).spec
        except JobNotFoundError:
            spec = None
        container_id = run.container_id or self._find_container(run)
        if container_id is not None and run.status is RunStatus.PENDING:
            state = self.engine.state(container_id)
            if (
                state is not None
                and state.status == "created"
                and self.engine.discard_unstarted(container_id)
            ):
                # Its scheduler died between create and start: it never ran; start afresh.
                # (A container that is gone may have run: that run ends lost, not twice.
                # One its scheduler, only frozen, started meanwhile is followed.)
                container_id = None
        if container_id is None:
            if run.status is RunStatus.PENDING and spec is not None:
                self.start_run(run, spec, None)  # its owner died before creating a container
            else:
                self.store.finish_run(
                    run.id,
                    status=RunStatus.LOST,
                    finished_at=self.clock(),
                    error="its scheduler died and no container of it was found",
                    notify=notify_events.on_end(self.launcher.with_defaults(spec))
                    if spec
                    else None,
                    chain=chains.on_end(spec) if spec else None,
                )
            return
        if spec is None:  # the job was deleted meanwhile: follow the run all the same
            spec = parse_job({"name": run.job, "schedule": "@daily", "image": run.image or "-"})
        final_spec = spec
        self.start_run(run, spec, lambda: self.launcher.reattach(run, final_spec, container_id))

    def _find_container(self, run: RunRecord) -> str | None:
        for workload in self.engine.managed(run_id=run.id):
            if workload.run_id == run.id and workload.job == run.job:
                return workload.handle
        return None
