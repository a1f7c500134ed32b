"""What a run's container is: its name, labels, environment and resources, as a pure
function of the run, its job and what the launch prepared (image, mounts, ports,
secrets). No engine call and no randomness here: the caller draws the tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.engine import (
    ContainerSpec,
)
from orchestrator.hostpaths import MountPlan
from orchestrator.labels import JOB_LABEL, LAUNCH_LABEL, MANAGED_LABEL, RUN_LABEL
from orchestrator.records import RunRecord
from orchestrator.runner.secretfiles import LaunchSecrets
from orchestrator.spec import JobSpec


def port_variable(key: str) -> str:
    """The variable that tells a job its host port: ORCHESTRATOR_PORT_8080 (_UDP for udp)."""
    number, _, protocol = key.partition("/")
    return f"ORCHESTRATOR_PORT_{number}" + ("_UDP" if protocol == "udp" else "")


def container_name(job: str, run_id: int, token: str) -> str:
    """Unique even when several databases share one engine (tests, staging): `token` is
    drawn afresh for each container."""
    return f"orchestrator-{job}-{run_id}-{token}"


def container_spec(
    run: RunRecord,
    spec: JobSpec,
    *,
    name: str,
    image_id: str,
    plans: Sequence[MountPlan],
    ports: Mapping[str, int],
    given: LaunchSecrets,
    launch: str,
    port_host_ip: str,
    extra_labels: Sequence[tuple[str, str]] = (),
    default_pids_limit: int | None = None,
) -> ContainerSpec:
    """The container of one launch of `run`; `launch` is the label that finds it again
    when the engine did not answer the create (starting.py reconciles by it)."""
    # As docker run: --env-file first, -e over it; our own variables last.
    environment = {**given.environment, **dict(spec.environment)}
    environment.update(
        {secret.env: given.environment[secret.env] for secret in spec.secrets if secret.env}
    )
    environment.update({port_variable(key): str(port) for key, port in ports.items()})
    environment.update({"ORCHESTRATOR_JOB": spec.name, "ORCHESTRATOR_RUN_ID": str(run.id)})
    return ContainerSpec(
        name=name,
        image=image_id,
        labels={
            **dict(spec.labels),
            **dict(extra_labels),
            MANAGED_LABEL: "true",
            JOB_LABEL: spec.name,
            RUN_LABEL: str(run.id),
            LAUNCH_LABEL: launch,
        },
        command=spec.command,
        entrypoint=spec.entrypoint,
        environment=environment,
        mounts=list(plans),
        ports={key: (port_host_ip, port) for key, port in ports.items()},
        working_dir=spec.working_dir,
        user=spec.user,
        memory=spec.resources.memory,
        cpus=spec.resources.cpus,
        pids_limit=spec.resources.pids or default_pids_limit,
        network=spec.network,
        privileged=spec.privileged,
        host_network=spec.host_network,
        host_pid=spec.host_pid,
        merge_output=True,
        constraints=spec.placement.constraints,
        preferences=spec.placement.preferences,
        bind_on_every_node=spec.bind_on_every_node,
    )
