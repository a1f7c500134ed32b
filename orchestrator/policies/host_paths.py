"""Which host paths and named volumes a job may mount: the decisions, as pure functions.

The root-equivalent parts of a host (its configuration, kernel interfaces, devices, boot
files, the users' and root's homes, runtime state, the engines' and hypervisors' stores,
the spooled crontabs, the system's programs and libraries) hand over the machine to
whoever may write, or even read, them. A bind that lies in one of them, or CONTAINS one
(`/var/lib` holds `/var/lib/docker`), is refused unless `ORCHESTRATOR_ALLOWED_HOST_PATHS`
names that part, or a path below it, itself: an entry of `/` or `/var` confines jobs to
it but grants none of the parts within.

Named volumes: one whose driver options bind a host directory (`type=none,o=bind,
device=/etc`) is that directory, held to the rules above; the volumes of the scheduler's
own container and of its compose stack (its database's) need to be named in
`ORCHESTRATOR_ALLOWED_VOLUMES`, which, when set, also confines jobs to the volumes it
names. A volume that does not exist yet is created by the engine with the local driver,
empty: nothing of the host's, so it needs no grant.

Callers (orchestrator.policies.safety) pass paths normalised and, at launch, resolved.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence

from orchestrator.errors import InvalidSpecError
from orchestrator.hostpaths import VolumeFacts
from orchestrator.settings import ALLOWED_HOST_PATHS_ENV, ALLOWED_VOLUMES_ENV
from orchestrator.spec import LoadedJob

ROOT_EQUIVALENT = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",  # podman's and CRI-O's store
    "/var/lib/kubelet",
    "/var/lib/rancher",  # k3s and RKE2: the cluster's admin credentials
    "/var/lib/lxd",  # its unix.socket is root, as is incus's
    "/var/lib/incus",
    "/var/snap",  # snap packages' state (snap lxd's socket)
    "/var/lib/libvirt",
    "/var/spool",  # cron's crontabs and at's jobs, run as their owners
    "/home",  # users in the sudo or docker group: ~/.ssh, ~/.bashrc
    "/usr",
    "/bin",
    "/sbin",
)
# Besides these, every top-level `/lib*` (/lib, /lib32, /lib64, /libx32).
LIBRARY_PREFIX = "lib"


def normal(path: str) -> str:
    """`path` normalised as Linux reads it (normpath keeps a leading `//`; Linux does not)."""
    return "/" + posixpath.normpath(path).lstrip("/") if path.startswith("/") else path


def within(parent: str, path: str) -> bool:
    """Whether `path` is `parent` or lies below it (both normalised)."""
    return path == parent or parent == "/" or path.startswith(parent + "/")


def _library_dirs(source: str) -> list[str]:
    top = source.split("/")[1]
    return [f"/{top}"] if top.startswith(LIBRARY_PREFIX) else []


def system_parts(source: str) -> list[str]:
    """The root-equivalent parts that `source` lies in or contains."""
    source = normal(source)
    touched = [part for part in ROOT_EQUIVALENT if within(part, source) or within(source, part)]
    return touched + _library_dirs(source)


def _granted(part: str, source: str, allowed: Sequence[str]) -> bool:
    """Whether an allow-list entry grants `part` to a bind of `source`: one equal to or
    below the part, that the source lies in (for a source containing the part: the part)."""
    for entry in map(normal, allowed):
        if within(source, part):  # source contains the part: the whole part is handed over
            if entry == part:
                return True
        elif within(part, entry) and within(entry, source):
            return True
    return False


def host_path_refusal(source: str, allowed: Sequence[str]) -> str | None:
    """Why a bind of host path `source` is refused (None: it is not), as the tail of a
    refusal line: what the path is and which setting would permit it."""
    source = normal(source)
    if allowed and not any(within(normal(entry), source) for entry in allowed):
        return f"host path {source} is outside {ALLOWED_HOST_PATHS_ENV} ({','.join(allowed)})"
    return system_part_refusal(source, allowed)


def system_part_refusal(source: str, allowed: Sequence[str]) -> str | None:
    """Why a bind of `source` is refused for the parts of the host's system it reaches."""
    source = normal(source)
    missing = [part for part in system_parts(source) if not _granted(part, source, allowed)]
    if not missing:
        return None
    if within(missing[0], source):
        where = "is" if source == missing[0] else f"lies in {missing[0]},"
        up_to = "" if source == missing[0] else f" (or a parent of it up to {missing[0]})"
        return (
            f"host path {source} {where} a part of the host's system that gives a job "
            f"control of it: to allow it, name {source}{up_to} in {ALLOWED_HOST_PATHS_ENV}, "
            "which then confines every job's host paths to that list"
        )
    return (
        f"host path {source} holds {', '.join(missing)}, part of the host's system that "
        f"gives a job control of it: to allow it, name {', '.join([source, *missing])} "
        f"in {ALLOWED_HOST_PATHS_ENV}, which then confines every job's host paths to "
        "that list"
    )


def volume_refusal(
    name: str,
    facts: VolumeFacts | None,
    *,
    allowed_volumes: Sequence[str],
    guarded: Iterable[str],
    project: str | None,
) -> str | None:
    """Why a job may not mount the named volume `name` (None: it may), the host path a
    bind-driver volume stands for aside (checked as a host path by the caller).

    `guarded`: the volumes of the scheduler's own container; `project`: its compose
    project, whose volumes (its database's) are guarded too."""
    granted = name in allowed_volumes
    if granted:
        return None
    ours = name in set(guarded)
    stack = facts is not None and project is not None and facts.project == project
    if ours or stack:
        whose = "the scheduler's own" if ours else f"of the scheduler's stack ({project})"
        return f"volume {name} is {whose}: to allow it, name {name} in {ALLOWED_VOLUMES_ENV}"
    if allowed_volumes:
        return (
            f"volume {name} is not in {ALLOWED_VOLUMES_ENV} ({','.join(allowed_volumes)}): "
            f"add it there to allow it"
        )
    return None


def check_job_files(
    loaded: Sequence[LoadedJob],
    *,
    allowed_host_paths: Sequence[str],
    allowed_volumes: Sequence[str],
    holds_socket: Callable[[str], bool],
) -> None:
    """At validate and apply: what the job files alone show (a path as written; links,
    translation and the engine's volumes are the launch's to check). A bind that reaches
    an engine socket is left to the launch, where the service's grants are known; the
    allow-list's confinement too (it names host paths, a job names its paths as the
    scheduler sees them)."""
    problems = []
    for job in loaded:
        for volume in job.spec.volumes:
            if volume.is_bind:
                source = normal(volume.source)
                if holds_socket(source):
                    continue
                refusal = system_part_refusal(source, allowed_host_paths)
            elif allowed_volumes and volume.source not in allowed_volumes:
                refusal = volume_refusal(
                    volume.source, None, allowed_volumes=allowed_volumes, guarded=(), project=None
                )
            else:
                refusal = None
            if refusal:
                problems.append(
                    f"{job.source}: job {job.spec.name!r}: volumes: {volume}: {refusal}"
                )
    if problems:
        raise InvalidSpecError("\n".join(problems))
