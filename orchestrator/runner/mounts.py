"""A run's mounts: the job's volumes translated to host paths and checked by the host
policy, plus the engine's socket (the `docker_socket` grant) and the secret files."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from orchestrator.hostpaths import (
    HostPathError,
    MountPlan,
    SelfContainer,
    VolumeFacts,
    translate_volume,
)
from orchestrator.policies.safety import (
    HostPolicy,
    UnsafeJobError,
    check_launch,
    resolve_requested_path,
)
from orchestrator.runner.secretfiles import LaunchSecrets
from orchestrator.spec import JobSpec, VolumeSpec

# Where a job that holds the docker_socket grant finds the engine.
JOB_SOCKET_PATH = "/var/run/docker.sock"


def engine_socket_on_host(engine_socket: str | None, where: SelfContainer) -> tuple[str, ...]:
    """The engine's socket as the host names it (for the policy), where we can tell."""
    if engine_socket is None:
        return ()
    if not where.in_container:
        return tuple(dict.fromkeys((engine_socket, os.path.realpath(engine_socket))))
    try:
        plans = translate_volume(VolumeSpec(engine_socket, JOB_SOCKET_PATH), where)
    except HostPathError:
        return ()
    return tuple(plan.source for plan in plans if plan.type == "bind")


def _resolver(spec: JobSpec, volume: VolumeSpec) -> Callable[[str], str]:
    def realpath(path: str) -> str:
        try:
            return os.path.realpath(path)
        except OSError as error:  # a link that changed while it was read
            raise UnsafeJobError(
                f"job {spec.name!r}: volumes: {volume}: host path {path} cannot be resolved "
                f"({error.strerror}): not mounted"
            ) from None

    return realpath


def plan_mounts(
    spec: JobSpec,
    where: SelfContainer,
    policy: HostPolicy,
    given: LaunchSecrets,
    api: tuple[int, int],
    *,
    engine_socket: str | None,
    engine_address: str,
    volume_facts: Callable[[str], VolumeFacts | None] | None = None,
) -> list[MountPlan]:
    """The job's volumes as the engine will get them, checked by the policy, plus what
    its grant and its secrets add. `volume_facts` asks the engine about a named volume."""
    plans: list[MountPlan] = []
    for volume in spec.volumes:
        if volume.is_bind:
            real = resolve_requested_path(volume.source, where, _resolver(spec, volume))
            volume = replace(volume, source=real)
        plans.extend(translate_volume(volume, where, api))
    named = {plan.source for plan in plans if plan.type == "volume"}
    facts = {name: volume_facts(name) for name in sorted(named)} if volume_facts else {}
    for name, known in facts.items():
        if known is not None and known.bind_device and not where.in_container:
            facts[name] = replace(known, bind_device=os.path.realpath(known.bind_device))
    check_launch(spec, plans, policy, facts)
    plans = [replace(plan, checked=plan.type == "bind") for plan in plans]
    if spec.docker_socket:
        if engine_socket is None:
            raise UnsafeJobError(
                f"job {spec.name!r} asks for docker_socket, but this service reaches the "
                f"engine at {engine_address}, not through a socket it could hand over"
            )
        plans.extend(translate_volume(VolumeSpec(engine_socket, JOB_SOCKET_PATH), where, api))
    for target, path in sorted(given.files.items()):
        secret = VolumeSpec(str(path), target, read_only=True)
        plans.extend(translate_volume(secret, where, api))
    return plans
