"""Jobs from container labels, live: found at start and through the engine's event stream.

Each look lists the containers (one engine call), reads their labels with the readers
ORCHESTRATOR_LABEL_PREFIXES names, holds each job to the label policy
(policies/label_jobs.py) unless labels are trusted, and reconciles the stored label jobs
(store/label_jobs.py: only what changed is written). A container's start, die, destroy
or rename wakes a look when its labels can define jobs (a key under a reader's prefix;
not a job's own container: on a busy engine the others would wake a look over and
over); events that come during one are folded into the next. The
stream is followed again after the engine went away, with a look first, so nothing that
happened meanwhile is missed. The engine sends a container's `die` before its listing
stops saying `running`, so a container whose last event was `die` is taken as stopped
until its next `start`. A refused job is logged once (and audited), naming the
container, the job and the key; the container's other jobs still load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from orchestrator.clock import Clock, utc_now
from orchestrator.engine.contract import (
    ContainerEvent,
    ContainerEvents,
    Engine,
    LabelledContainer,
)
from orchestrator.errors import OrchestratorError
from orchestrator.labels import MANAGED_LABEL
from orchestrator.policies.label_jobs import (
    READERS,
    ContainerFacts,
    Group,
    LabelPolicy,
    group,
    label_refusal,
    matches,
    may_define_jobs,
    source_of,
    with_own_network,
    with_target,
)
from orchestrator.spec import JobSpec, LoadedJob, parse_job
from orchestrator.store.facade import Store
from orchestrator.store.label_jobs import LabelSync, WantedLabelJob

log = logging.getLogger(__name__)

ACTOR = "labels"
RECONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class LabelSettings:
    mode: str = "on"  # on | trusted | off
    filter: Mapping[str, str] = field(default_factory=dict)
    prefixes: tuple[str, ...] = ("orchestrator",)


# The job files' own checks, for trusted labels: (job) -> None, or raises.
FileCheck = Callable[[LoadedJob], None]


@dataclass
class Look:
    """What one look found: the jobs wanted, the foreign sources, the refusals."""

    wanted: list[WantedLabelJob] = field(default_factory=list)
    foreign: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


def _facts(container: LabelledContainer) -> ContainerFacts:
    return ContainerFacts(
        id=container.id,
        name=container.name,
        labels=container.labels,
        running=container.running,
        created=container.created,
        networks=container.networks,
        volumes=container.volumes,
    )


def look(
    containers: list[LabelledContainer],
    settings: LabelSettings,
    file_check: FileCheck | None = None,
) -> Look:
    """The label jobs these containers define, as this scheduler's settings read them."""
    found = Look()
    ours: list[ContainerFacts] = []
    theirs: list[ContainerFacts] = []
    for container in containers:
        if container.labels.get(MANAGED_LABEL) == "true":
            continue  # a job's own container: never a source of jobs
        facts = _facts(container)
        (ours if matches(container.labels, settings.filter) else theirs).append(facts)
    found.foreign = {source_of(c) for c in theirs} - {source_of(c) for c in ours}
    for each in group(ours):
        _read_group(each, settings, file_check, found)
    return found


def _read_group(
    each: Group, settings: LabelSettings, file_check: FileCheck | None, found: Look
) -> None:
    leader = each.leader
    jobs = [job for prefix in settings.prefixes for job in READERS[prefix](leader.labels, leader)]
    policy = LabelPolicy(
        trusted=settings.mode == "trusted", siblings=frozenset(job.name for job in jobs)
    )
    members = (leader, *(m for m in each.members if m is not leader))
    for job in jobs:
        where = f"container {leader.name!r}: job {job.original!r}"
        if job.problem is not None:
            found.refused.append(f"{where}: {job.problem}")
            continue
        mapping = with_target(job.mapping, leader)
        if not policy.trusted:
            mapping = with_own_network(mapping, leader)
        try:
            spec: JobSpec = parse_job(mapping, source=f"container {leader.name!r}")
            if policy.trusted and file_check is not None:
                file_check(LoadedJob(spec, each.source))
        except OrchestratorError as error:
            found.refused.append(f"{where}: {error}")
            continue
        refusal = label_refusal(spec, mapping, members, policy)
        if refusal is not None:
            key, what = refusal
            found.refused.append(
                f"{where}: {key}: a label job may not have {what} "
                "(ORCHESTRATOR_LABEL_JOBS=trusted allows it)"
            )
            continue
        found.wanted.append(
            WantedLabelJob(spec.name, spec.to_dict(), each.source, spec.enabled and each.running)
        )


class LabelDiscovery:
    """Keeps the stored label jobs in step with the engine's containers."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        settings: LabelSettings,
        file_check: FileCheck | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.engine = engine
        self.settings = settings
        self.file_check = file_check
        self.clock = clock
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._told: set[str] = set()
        self._stream: ContainerEvents | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.looks = 0  # how many looks were made (the engine listed, the store reconciled)
        self._died: set[str] = set()  # ids whose last event was `die` (see the module doc)

    def reconcile(self) -> LabelSync:
        """One look: the containers listed, the stored label jobs made what they say."""
        with self._lock:
            self.looks += 1
            listed = self.engine.containers({})
            died = set(self._died)
            containers = [replace(c, running=False) if c.id in died else c for c in listed]
            found = look(containers, self.settings, self.file_check)
            result = self.store.reconcile_label_jobs(found.wanted, found.foreign)
            problems = found.refused + [
                f"label job {name!r} of {source} refused: the name is taken by {holder}"
                for name, source, holder in result.clashes
            ]
            self._tell(problems, result)
            return result

    def _tell(self, problems: list[str], result: LabelSync) -> None:
        for problem in problems:
            if problem not in self._told:
                log.warning("label job refused: %s", problem)
                self._audit("jobs.labels.refused", problem)
        self._told = set(problems)
        if result.changed:
            summary = (
                f"{len(result.created)} created, {len(result.updated)} updated, "
                f"{len(result.deleted)} deleted"
            )
            log.info(
                "label jobs: %s (%s)",
                summary,
                ", ".join(result.created + result.updated + result.deleted),
            )
            self._audit("jobs.labels", summary)

    def _audit(self, action: str, result: str) -> None:
        try:
            self.store.audit(
                at=self.clock(), actor=ACTOR, action=action, target=None, result=result
            )
        except OrchestratorError as error:
            log.warning("label jobs: audit not written: %s", error)

    def start(self) -> None:
        """Follow the event stream (and look on each change) until stop()."""
        for target, name in ((self._follow, "label-events"), (self._looks, "label-looks")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream = self.engine.container_events(self.settings.filter)
                self._dirty.set()  # a look after subscribing: nothing missed meanwhile
                for event in self._stream:
                    if self._stop.is_set():
                        return
                    self._note(event)
                    if may_define_jobs(event.labels, self.settings.prefixes):
                        self._dirty.set()
            except OrchestratorError as error:
                if not self._stop.is_set():
                    log.warning("label jobs: engine events: %s (will follow again)", error)
            self._stop.wait(RECONNECT_SECONDS)

    def _note(self, event: ContainerEvent) -> None:
        if event.action == "die":
            self._died.add(event.id)
        elif event.action in ("start", "destroy"):
            self._died.discard(event.id)

    def _looks(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            try:
                self.reconcile()
            except OrchestratorError as error:
                log.warning("label jobs: %s (will look again)", error)
                self._stop.wait(RECONNECT_SECONDS)
                self._dirty.set()
            except Exception:
                log.exception("label jobs: a look failed (will look again)")
                self._stop.wait(RECONNECT_SECONDS)
                self._dirty.set()
