"""What a job may do to the host: the one policy, used at validate, apply and launch. Pure.

The engine's socket is root on the host: a job holding it (or running privileged, or in
the host's network or PID namespace) can take the whole machine. Such a job runs only
when it asks for it AND the service permits it (two keys). A job asks in any of the
ways that give it the power, not only by the flag that names it:

- `docker_socket: true`, or a bind mount whose host source IS an engine socket or any
  directory that CONTAINS one (`/var/run`, `/run`, `/var`): all are `docker_socket`;
- `host_network: true`, or `network: host`: both are `host_network`;
- `host_pid: true`, `privileged: true`.

Never allowed, whatever the grants: a bind mount of the host's `/`, and joining another
container's namespaces (`network: container:<id>`). With an allow-list of host
directories, any bind source outside it is refused. The root-equivalent parts of the
host (`/etc`, `/proc`, `/var/lib/docker`, ...) and guarded named volumes need a grant:
orchestrator.policies.host_paths decides those.

`check_launch` runs on the paths as the ENGINE will see them (after host path translation
and symlink resolution, see `resolve_requested_path`). What a job file alone shows (a
source of `/`, `network: container:...`) the spec parser already refuses at validate.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import UnsafeJobError as UnsafeJobError
from orchestrator.hostpaths import MountPlan, SelfContainer, VolumeFacts, covering_mount
from orchestrator.policies import host_paths
from orchestrator.policies.host_paths import host_path_refusal, volume_refusal
from orchestrator.settings import ALLOW_PRIVILEGED_JOBS_ENV, ALLOWED_HOST_PATHS_ENV
from orchestrator.spec import JobSpec, LoadedJob

# Where engines listen on a host by default (Debian's /var/run is a link to /run, so
# both spellings), containerd included: its socket is as good as Docker's.
WELL_KNOWN_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
)
SOCKET_FILE_NAMES = ("docker.sock", "containerd.sock", "podman.sock")


@dataclass(frozen=True)
class HostPolicy:
    """The service's side of the two keys, and what it knows about the host."""

    allow_privileged_jobs: bool = False
    # Host directories bind sources must lie in; empty: no allow-list.
    allowed_host_paths: tuple[str, ...] = ()
    # Host paths of the engine's socket(s), beyond the well-known ones.
    engine_sockets: tuple[str, ...] = ()
    # Named volumes jobs may mount (empty: any but the guarded ones).
    allowed_volumes: tuple[str, ...] = ()
    # The scheduler's own volumes, and its compose project (whose volumes are guarded).
    guarded_volumes: tuple[str, ...] = ()
    project: str | None = None

    @property
    def sockets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*WELL_KNOWN_SOCKETS, *self.engine_sockets)))


def _normal(path: str) -> str:
    # normpath keeps a leading "//" (POSIX lets it mean something else); Linux does not.
    return "/" + posixpath.normpath(path).lstrip("/") if path.startswith("/") else path


def _within(parent: str, path: str) -> bool:
    parent, path = _normal(parent), _normal(path)
    return path == parent or parent == "/" or path.startswith(parent + "/")


def reaches_socket(source: str, sockets: Iterable[str]) -> bool:
    """Whether a bind of host path `source` hands over an engine socket."""
    source = _normal(source)
    if posixpath.basename(source) in SOCKET_FILE_NAMES:
        return True
    return any(_within(source, socket) for socket in sockets)


def requests_of(spec: JobSpec, bind_sources: Iterable[str], policy: HostPolicy) -> list[str]:
    """Every dangerous grant the job asks for, by any route."""
    asked = set(spec.dangerous_requests)
    if any(reaches_socket(source, policy.sockets) for source in bind_sources):
        asked.add("docker_socket")
    order = ("privileged", "host_network", "host_pid", "docker_socket")
    return [name for name in order if name in asked]


def check_launch(
    spec: JobSpec,
    plans: Sequence[MountPlan],
    policy: HostPolicy,
    volumes: Mapping[str, VolumeFacts | None] | None = None,
) -> None:
    """The whole policy on the mounts the engine will get (host paths, links resolved).

    `plans` are the job's own volumes; mounts the service adds for a grant or a secret
    are not the job's to justify and are not passed here. `volumes`: what the engine
    says of each named volume (None: it does not exist); a volume whose driver binds a
    host path is checked as a bind of that path.
    """
    for plan in plans:
        if plan.type != "volume" or plan.subpath:
            continue  # a sub-folder of a volume of ours, asked for by its path: as a bind's
        facts = (volumes or {}).get(plan.source)
        refusal = volume_refusal(
            plan.source,
            facts,
            allowed_volumes=policy.allowed_volumes,
            guarded=policy.guarded_volumes,
            project=policy.project,
        )
        if refusal:
            raise UnsafeJobError(f"job {spec.name!r}: volumes: {plan.target}: {refusal}")
    binds = [plan for plan in plans if plan.type == "bind"]
    for plan in plans:
        device = _bind_device(plan, volumes)
        if device is not None:
            binds.append(MountPlan("bind", _normal(device), plan.target, plan.read_only))
    for plan in binds:
        if _normal(plan.source) == "/":
            raise UnsafeJobError(
                f"job {spec.name!r}: volume for {plan.target}: its host path is / (the whole "
                "machine), which is never allowed: mount the directory the job needs"
            )
        if policy.allowed_host_paths and not any(
            _within(allowed, plan.source) for allowed in policy.allowed_host_paths
        ):
            raise UnsafeJobError(
                f"job {spec.name!r}: volume for {plan.target}: host path {plan.source} is "
                f"outside {ALLOWED_HOST_PATHS_ENV} ({','.join(policy.allowed_host_paths)})"
            )
    asked = requests_of(spec, [plan.source for plan in binds], policy)
    if asked and not policy.allow_privileged_jobs:
        via = [
            f"{plan.source}:{plan.target}"
            for plan in binds
            if reaches_socket(plan.source, policy.sockets)
        ]
        how = f" (volume {', '.join(via)} reaches the engine's socket)" if via else ""
        raise UnsafeJobError(
            f"job {spec.name!r} asks for {', '.join(asked)}{how}, which gives it control of "
            f"the host; this service does not permit that "
            f"(set {ALLOW_PRIVILEGED_JOBS_ENV}=true to allow it)"
        )
    for plan in binds:
        if asked and reaches_socket(plan.source, policy.sockets):
            continue  # the docker_socket grant, which the service gave: root already
        refusal = host_path_refusal(plan.source, policy.allowed_host_paths)
        if refusal:
            raise UnsafeJobError(f"job {spec.name!r}: volumes: {plan.target}: {refusal}")


def _bind_device(plan: MountPlan, volumes: Mapping[str, VolumeFacts | None] | None) -> str | None:
    """The host path a named volume's driver binds, if it does."""
    facts = (volumes or {}).get(plan.source) if plan.type == "volume" else None
    return facts.bind_device if facts is not None else None


def check_job_paths(loaded: Sequence[LoadedJob], policy: HostPolicy) -> None:
    """At validate and apply: the host paths and volumes the job files name, as written
    (InvalidSpecError, one line each); see host_paths.check_job_files."""
    host_paths.check_job_files(
        loaded,
        allowed_host_paths=policy.allowed_host_paths,
        allowed_volumes=policy.allowed_volumes,
        holds_socket=lambda source: reaches_socket(source, policy.sockets),
    )


Resolver = Callable[[str], str]


def resolve_requested_path(path: str, where: SelfContainer, realpath: Resolver) -> str:
    """The path a bind mount really names, symlinks resolved where we can see them.

    The engine resolves links on the HOST, where an absolute link means something else
    than in our container. So a link is followed here; in a container its target must
    stay on the same mount of ours (else the engine would follow it somewhere we cannot
    see, such as the host's /), and the resolved path is what gets translated.
    """
    requested = _normal(path)
    resolved = _normal(realpath(requested))
    if resolved == requested or not where.in_container:
        return resolved
    before = covering_mount(where.mounts, requested)
    after = covering_mount(where.mounts, resolved)
    if before is None or after != before:
        raise UnsafeJobError(
            f"{requested} is a symbolic link (or lies under one) that leads to {resolved}, "
            "out of the scheduler's mount that holds it: name the real directory instead"
        )
    return resolved
