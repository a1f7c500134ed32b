"""Use cases on jobs: validate, apply, list, show, export, switch, delete, run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import RefusedError
from orchestrator.operations.context import Audited
from orchestrator.records import (
    ApplyResult,
    JobListing,
    JobRecord,
    NewRun,
    RunRecord,
    RunTrigger,
)

if TYPE_CHECKING:
    from orchestrator.operations.context import Backends
    from orchestrator.policies.secret_grants import SecretPolicy
    from orchestrator.runner.launch_settings import LaunchSettings
    from orchestrator.spec import LoadedJob


@dataclass(frozen=True)
class MissingSecret:
    """A secret a job names that is not in the secrets folder here."""

    source: str
    job: str
    secret: str


def check_job_paths(loaded: Sequence[LoadedJob], settings: LaunchSettings) -> None:
    """The host paths and volumes the jobs name, by the launch settings (what the job
    files alone show; the rest is checked at launch)."""
    from orchestrator.policies.safety import HostPolicy
    from orchestrator.policies.safety import check_job_paths as check

    policy = HostPolicy(
        allowed_host_paths=settings.allowed_host_paths, allowed_volumes=settings.allowed_volumes
    )
    check(loaded, policy)


def find_missing_secrets(loaded: Sequence[LoadedJob], secrets_dir: str) -> list[MissingSecret]:
    """Secrets the jobs name that are not in `secrets_dir` here. They may be where the
    service runs, so callers warn and do not refuse. Needs no database."""
    from orchestrator.runner.secretfiles import missing_secrets

    return [
        MissingSecret(job.source, job.spec.name, name)
        for job in loaded
        for name in missing_secrets(job.spec, secrets_dir)
    ]


def check_job_networks(loaded: Sequence[LoadedJob], backends: Backends) -> None:
    """The network policy on a batch before it is written: what the files and the
    settings show, and where the engine answers, the networks their names resolve to
    (else the launch decides)."""
    from orchestrator.errors import EngineError, SelfDetectionError
    from orchestrator.policies.networks import (
        check_network_joined,
        check_networks_named,
        joins_network,
    )

    allowed = backends.launch_settings().allowed_networks
    check_networks_named([job.spec for job in loaded], allowed)
    asking = [job.spec for job in loaded if joins_network(job.spec)]
    if not asking:
        return
    try:
        engine = backends.engine()
        own = backends.where().networks
        resolved = [(spec, engine.find_network(spec.network or "")) for spec in asking]
    except (EngineError, SelfDetectionError):
        return
    for spec, joined in resolved:
        if joined is not None:  # a network made later is checked when a run joins it
            check_network_joined(spec, joined, own, allowed)


def refuse_forbidden_secrets(loaded: Sequence[LoadedJob], policy: SecretPolicy) -> None:
    """UnsafeJobError for the first job that names a file the secrets policy keeps from
    it (a file of the service's own, a secret not granted to it, an env_file elsewhere)."""
    from orchestrator.policies.secret_grants import check_job
    from orchestrator.runner.secretfiles import identify

    for job in loaded:
        check_job(job.spec, policy, identify)


def refuse_untrusted_files(loaded: Sequence[LoadedJob], launch: LaunchSettings) -> None:
    """What the files and the settings alone show of the trust policy (UnsafeJobError
    for the first job it refuses; InvalidSpecError for a host path): host paths and
    volumes, pinned low ports, networks, secrets. `jobs validate` and `serve --jobs` run
    it without the engine; apply and launch run it too."""
    from orchestrator.policies.hostports import check_pinned_ports
    from orchestrator.policies.networks import check_networks_named

    check_job_paths(loaded, launch)
    check_pinned_ports(loaded, launch.allow_low_ports)
    check_networks_named([job.spec for job in loaded], launch.allowed_networks)
    refuse_forbidden_secrets(loaded, launch.secret_policy)


def refuse_untrusted(loaded: Sequence[LoadedJob], backends: Backends) -> None:
    """The whole trust policy on a batch before it is written: the files' part, then
    what the engine knows (the networks names resolve to)."""
    refuse_untrusted_files(loaded, backends.launch_settings())
    check_job_networks(loaded, backends)


class JobOperations:
    def __init__(self, audited: Audited) -> None:
        self._audited = audited
        self._backends = audited.backends
        self._store = audited.backends.store

    def apply(
        self,
        loaded: Sequence[LoadedJob],
        *,
        given: str,
        prune: bool = False,
        force: bool = False,
        dry_run: bool = False,
    ) -> ApplyResult:
        """Create or update jobs (an idempotent upsert), all or nothing. With `prune`, jobs
        not in the batch are deleted, but never all of them unless `force` (`given` names
        what the batch came from, for that refusal)."""

        def refuse_emptying(result: ApplyResult) -> None:
            everything = result.deleted and not (
                result.created or result.updated or result.unchanged
            )
            if everything and not force and not dry_run:
                raise RefusedError(
                    f"{given} has no jobs, so --prune would delete all "
                    f"{len(result.deleted)}: add --force if that is what you want"
                )

        if dry_run:
            refuse_untrusted(loaded, self._backends)
            return self._store.apply_jobs(loaded, prune=prune, dry_run=True, check=refuse_emptying)
        with self._audited.audit("jobs.apply", given) as summary:
            # Inside the audit: a job the trust policy refuses is recorded with who tried.
            refuse_untrusted(loaded, self._backends)
            result = self._store.apply_jobs(loaded, prune=prune, check=refuse_emptying)
            summary.append(
                f"{len(result.created)} created, {len(result.updated)} updated, "
                f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted"
            )
        return result

    def listing(self) -> list[JobListing]:
        """Every job as a list shows it, without parsing each definition again."""
        return self._store.job_listing()

    def list(self) -> list[JobRecord]:
        return self._store.jobs()

    def get(self, name: str) -> JobRecord:
        """JobNotFoundError when there is none."""
        return self._store.job(name)

    def export(self) -> str:
        """Every job as one job file (YAML), values of secret-looking variables masked."""
        import yaml

        from orchestrator.spec import masked_definition

        jobs = self._store.jobs()
        masked = [job.name for job in jobs if masked_definition(job.spec) != job.spec.to_dict()]
        header = "# orchestrator jobs export: apply with 'orchestrator jobs apply FILE'\n"
        if masked:
            header += (
                "# masked (*** stands for a value that is not exported; put it back, or "
                f"better move it to a secret, before applying): {', '.join(masked)}\n"
            )
        if not jobs:
            return header + "[]\n"
        body = yaml.safe_dump_all(
            [masked_definition(job.spec) for job in jobs],
            sort_keys=False,
            explicit_start=True,
            allow_unicode=True,
        )
        return header + body

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Whether anything changed."""
        with self._audited.audit("jobs.enable" if enabled else "jobs.disable", name) as summary:
            changed = self._store.set_job_enabled(name, enabled)
            if not changed:
                summary.append("unchanged")
        return changed

    def set_paused(self, pattern: str, paused: bool) -> tuple[str, ...]:
        """Pause (or resume) every job whose name matches the glob: the names changed."""
        with self._audited.audit("jobs.pause" if paused else "jobs.resume", pattern) as summary:
            changed = self._store.set_jobs_paused(pattern, paused, self._audited.actor)
            summary.append(", ".join(changed) if changed else "unchanged")
        return changed

    def delete(self, name: str, *, force: bool = False) -> None:
        """The job goes; its run history stays. Refused while others chain to it,
        unless `force`."""
        with self._audited.audit("jobs.delete", name):
            self._store.delete_job(name, force=force)

    def _runnable(self, name: str, force: bool) -> JobRecord:
        record = self._store.job(name)
        if not record.enabled and not force:
            raise RefusedError(f"job {name} is disabled: enable it, or run it anyway with --force")
        return record

    def queue_run(self, name: str, *, force: bool = False) -> RunRecord:
        """A pending manual run for a scheduler service to start."""
        with self._audited.audit("jobs.run", name) as summary:
            record = self._runnable(name, force)
            run = self._store.record_run(
                NewRun(
                    job=name,
                    scheduled_for=self._backends.clock(),
                    trigger=RunTrigger.MANUAL,
                    image=record.spec.image,
                )
            )
            summary.append(f"queued run {run.id}")
        return run

    def run_now(
        self, name: str, *, force: bool = False, on_output: Callable[[bytes], None]
    ) -> RunRecord:
        """Run the job here, now, handing its output over as it comes; the finished run."""
        with self._audited.audit("jobs.run", name) as summary:
            record = self._runnable(name, force)
            launcher = self._backends.launcher()
            run = launcher.queue(record.spec, RunTrigger.MANUAL)
            summary.append(f"run {run.id} here")
        return launcher.execute(run, record.spec, on_output=on_output)
