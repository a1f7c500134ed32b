"""The start of an exec job's run: its target found among the running containers, the
trust policy kept on it, and the exec created and started. From then on the run is
followed, timed out, cancelled and adopted as a container run is, over the exec's handle.

A target that is missing or not running fails the run with that line and exit 125 (as
`docker exec` does). `pick: one` runs in the first running match by name; `pick: all`
is refused at launch for now (one run follows one workload)."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from orchestrator.engine import Engine, ExecSpec, ExecTarget
from orchestrator.errors import ContainerGoneError, EngineError, OrchestratorError, quote
from orchestrator.hostpaths import SelfContainer
from orchestrator.policies.columns import fit_text
from orchestrator.policies.safety import UnsafeJobError
from orchestrator.policies.secret_grants import check_job
from orchestrator.records import RunRecord
from orchestrator.runner.launch_settings import LaunchSettings
from orchestrator.runner.secretfiles import identify, load_launch_secrets
from orchestrator.settings import ALLOW_PRIVILEGED_JOBS_ENV
from orchestrator.spec import JobSpec
from orchestrator.spec.model import Pick

EXEC_HANDLE_PREFIX = "exec:"  # how the engine's exec handles begin
EXIT_NO_TARGET = 125  # docker exec's own: the command never ran
TARGET_LENGTH = 256  # the run's image_digest column, where the target is recorded


class ExecTargetError(OrchestratorError):
    """The exec's target is missing or not running: the run fails, exit 125."""


@dataclass(frozen=True)
class StartedExec:
    handle: str
    target: ExecTarget
    masked: tuple[bytes, ...]


def vanished_exec(engine: Engine, handle: str) -> str | None:
    """For an adopted exec the engine no longer knows (its container was removed or
    restarted, or the engine restarted): its command stopped if it still runs (the
    stopper needs only the pid file its handle names), and the reason the run is lost.
    None for a container's handle."""
    if not handle.startswith(EXEC_HANDLE_PREFIX):
        return None
    container = handle.split(":")[1]
    with suppress(OrchestratorError):  # its container is gone too: so is the command
        engine.stop(handle, 0)
    return (
        f"the exec in container {container} was no longer known to the engine when a "
        "scheduler looked again (its container was removed or restarted): its end is unknown"
    )


def describe_target(target: ExecTarget) -> str:
    """How the run records its target: `name@id`."""
    return fit_text(f"{target.name}@{target.id}")[:TARGET_LENGTH]


def find_target(engine: Engine, spec: JobSpec) -> ExecTarget:
    if spec.container is not None:
        target = engine.exec_target(spec.container)
        if target is None:
            raise ExecTargetError(f"container {quote(spec.container)} not found")
        if not target.running:
            raise ExecTargetError(f"container {quote(target.name)} is not running")
        return target
    if spec.pick is Pick.ALL:
        raise ExecTargetError("pick: all is not supported yet: use pick: one")
    found = engine.exec_targets(dict(spec.selector))
    if not found:
        wanted = ",".join(f"{key}={value}" for key, value in spec.selector)
        raise ExecTargetError(f"no running container matches the selector {wanted}")
    return found[0]


def check_target(spec: JobSpec, target: ExecTarget, where: SelfContainer, granted: bool) -> None:
    """An exec into a container with the engine's socket, a privileged one, or ours, is
    root on the host: it needs the docker_socket grant."""
    why = (
        "the scheduler's own container"
        if where.container_id is not None and target.id.startswith(where.container_id)
        else "privileged"
        if target.privileged
        else "holds the engine's socket"
        if target.holds_socket
        else None
    )
    if why is not None and not granted:
        raise UnsafeJobError(
            f"job {spec.name!r}: exec into container {target.name!r} ({why}) needs the "
            f"docker_socket grant: set {ALLOW_PRIVILEGED_JOBS_ENV}=true to allow it"
        )


def start_exec(
    engine: Engine,
    run: RunRecord,
    spec: JobSpec,
    settings: LaunchSettings,
    where: SelfContainer,
    created: list[str],
) -> StartedExec:
    """Find, check, create and start. Every handle made is appended to `created`."""
    check_job(spec, settings.secret_policy, identify)
    given = load_launch_secrets(spec, settings.secrets_dir, settings.secret_policy)
    target = find_target(engine, spec)
    check_target(spec, target, where, settings.allow_privileged_jobs)
    environment = {**given.environment, **dict(spec.environment)}
    environment.update({"ORCHESTRATOR_JOB": spec.name, "ORCHESTRATOR_RUN_ID": str(run.id)})
    exec_spec = ExecSpec(
        container_id=target.id,
        command=spec.command or (),
        user=spec.user,
        working_dir=spec.working_dir,
        environment=environment,
    )
    try:
        handle = engine.create_exec(exec_spec)
        created.append(handle)
        engine.start(handle)
    except ContainerGoneError:
        raise ExecTargetError(f"container {quote(target.name)} not found") from None
    except EngineError as error:
        if "is not running" in str(error):
            raise ExecTargetError(f"container {quote(target.name)} is not running") from None
        raise
    return StartedExec(handle, target, given.masked)
