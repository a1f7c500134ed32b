"""The Docker adapter: the engine contract's methods over the docker SDK. Knows nothing of the DB.

Docker SDK errors are translated (see translate.py) into our own errors, with the image,
container or port they concern, so callers never see `docker.errors` or `requests`
exceptions. The socket's transport is in transport.py, the log stream in logstream.py.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from functools import partial
from typing import Any, Self

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig, Mount

from orchestrator.engine.contract import (
    ContainerEvents,
    ContainerExit,
    ContainerSpec,
    EngineFacts,
    Handle,
    LabelledContainer,
    ManagedWorkload,
    WorkloadState,
)
from orchestrator.engine.docker.events import DockerContainerEvents, list_containers
from orchestrator.engine.docker.logstream import LOG_BLOCK_BYTES, demultiplex, follow_then_reread
from orchestrator.engine.docker.merging import SHELL, ImageShape, merged
from orchestrator.engine.docker.translate import _engine_error, _reason, _translated
from orchestrator.engine.docker.transport import UNIX_SOCKET_URL, _share_one_pool
from orchestrator.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    ImageUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.hostpaths import (
    NetworkRef,
    ScannedMount,
    SelfContainer,
    VolumeFacts,
    parse_api_version,
)
from orchestrator.labels import JOB_LABEL, LAUNCH_LABEL, MANAGED_LABEL, RUN_LABEL
from orchestrator.settings import CONTAINER_ID_ENV, DEFAULT_DOCKER_SOCKET, DOCKER_HOST_ENV
from orchestrator.spec import PullPolicy

log = logging.getLogger(__name__)

# An image's id, once asked, serves the launches of the next seconds (pull policies
# `missing` and `never`): a burst of runs of one image asks the engine once, not once
# per run. A tag moved meanwhile is seen this much later.
IMAGE_ID_REUSE_SECONDS = 5.0
PROBE_LABEL = "orchestrator.probe"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
_PORT_TAKEN = re.compile(
    r"Bind for \S*?:(?P<port1>\d+) failed: port is already allocated"
    r"|listen (?:tcp|udp)[46]? \S*?:(?P<port2>\d+): bind: address already in use"
)


class DockerEngine:
    """The engine contract (orchestrator.engine.contract) over the docker SDK, for one
    Docker engine. Thread-safe with a pool as large as its users."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.api = client.api
        if str(self.api.base_url).startswith(UNIX_SOCKET_URL):
            # Proxies and .netrc from the environment have no business with a local
            # socket, and reading them again for every call cost a quarter of its CPU.
            self.api.trust_env = False
            _share_one_pool(self.api)
        self._shapes: dict[str, ImageShape] = {}  # image id -> its shape, probed once
        self._image_ids: dict[str, tuple[str, float]] = {}  # reference -> (id, when asked)

    @classmethod
    def from_env(cls, *, timeout: int = 60, max_pool_size: int = 32) -> Self:
        """Connect as DOCKER_HOST (or the local socket) says; fail with one clear line."""
        try:
            client = docker.from_env(timeout=timeout, max_pool_size=max_pool_size)
            client.ping()
        except (DockerException, requests.RequestException) as error:
            where = os.environ.get(DOCKER_HOST_ENV) or f"unix://{DEFAULT_DOCKER_SOCKET}"
            raise EngineUnavailableError(
                f"cannot reach the Docker engine at {where}: {_reason(error)}"
            ) from None
        return cls(client)

    def close(self) -> None:
        self.client.close()

    # --- facts about the engine -------------------------------------------------------

    def facts(self) -> EngineFacts:
        with _translated("reading the engine's version and info"):
            version = self.client.version()
            info = self.client.info()
        return EngineFacts(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            name=str(info.get("Name", "")),
        )

    @property
    def api_version(self) -> tuple[int, int]:
        return parse_api_version(str(self.api.api_version))

    def inspect_self(self, container_id: str, how: str) -> SelfContainer:
        """Our own container and its mount table, verified through the engine."""
        try:
            data = self.api.inspect_container(container_id)
        except NotFound:
            raise EngineError(
                f"this process looks like container {container_id[:12]} ({how}), but the "
                f"engine does not know it: set {CONTAINER_ID_ENV} to this "
                f"container's id or name"
            ) from None
        except (APIError, requests.RequestException) as error:
            raise EngineUnavailableError(
                f"cannot inspect our own container: {_reason(error)}"
            ) from None
        full_id = str(data["Id"])
        if (
            not full_id.startswith(container_id)
            and data.get("Name", "").lstrip("/") != container_id
        ):
            raise EngineError(f"container {container_id} resolves to {full_id[:12]}: ambiguous id")
        if not data.get("State", {}).get("Running", False):
            raise EngineError(f"container {full_id[:12]} ({how}) is not running: not us")
        mounts = [
            ScannedMount(
                type=str(m.get("Type", "")),
                destination=str(m["Destination"]),
                source=str(m.get("Name") if m.get("Type") == "volume" else m.get("Source", "")),
                read_only=not m.get("RW", True),
            )
            for m in data.get("Mounts", [])
        ]
        tmpfs = (data.get("HostConfig") or {}).get("Tmpfs") or {}
        mounts.extend(ScannedMount("tmpfs", str(destination)) for destination in tmpfs)
        project = ((data.get("Config") or {}).get("Labels") or {}).get(COMPOSE_PROJECT_LABEL)
        return SelfContainer(
            container_id=full_id,
            how=how,
            mounts=tuple(mounts),
            networks=self._networks_of(data),
            project=project or None,
        )

    def _networks_of(self, data: Mapping[str, Any]) -> tuple[NetworkRef, ...]:
        """The networks a container is on; in another's namespace (`container:<id>`,
        compose's `service:`), that one's."""
        mode = str((data.get("HostConfig") or {}).get("NetworkMode") or "")
        if mode.startswith("container:"):
            with _translated("inspecting the container whose network we share"):
                data = self.api.inspect_container(mode.removeprefix("container:"))
        attached = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return tuple(
            NetworkRef(id=str((about or {}).get("NetworkID") or ""), name=str(name))
            for name, about in attached.items()
        )

    def volume(self, name: str) -> VolumeFacts | None:
        """What the engine says of a named volume; None when it does not exist."""
        try:
            data = self.api.inspect_volume(name)
        except NotFound:
            return None
        except (APIError, requests.RequestException) as error:
            raise _engine_error(f"cannot inspect volume {name!r}", error) from None
        options = data.get("Options") or {}
        binds = {"bind", "rbind"} & set(str(options.get("o", "")).split(","))
        device = str(options.get("device") or "")
        return VolumeFacts(
            name=name,
            driver=str(data.get("Driver", "")),
            bind_device=device if binds and device else None,
            project=(data.get("Labels") or {}).get(COMPOSE_PROJECT_LABEL) or None,
        )

    def published_ports(self) -> set[tuple[str, int, str]]:
        """(host_ip, port, protocol) of every port published by a running container."""
        with _translated("listing containers"):
            containers = self.api.containers(filters={"status": "running"})
        found: set[tuple[str, int, str]] = set()
        for container in containers:
            for port in container.get("Ports") or []:
                if port.get("PublicPort"):
                    found.add(
                        (
                            str(port.get("IP", "0.0.0.0")),
                            int(port["PublicPort"]),
                            str(port.get("Type", "tcp")),
                        )
                    )
        return found

    def network_exists(self, name: str) -> bool:
        try:
            self.api.inspect_network(name)
        except NotFound:
            return False
        except (APIError, requests.RequestException) as error:
            raise EngineUnavailableError(
                f"cannot inspect network {name!r}: {_reason(error)}"
            ) from None
        return True

    def find_network(self, reference: str) -> NetworkRef | None:
        try:
            data = self.api.inspect_network(reference)
        except NotFound:
            return None
        except APIError as error:
            if error.is_client_error():  # a prefix of several ids: it names none
                return None
            raise EngineUnavailableError(
                f"cannot inspect network {reference!r}: {_reason(error)}"
            ) from None
        except requests.RequestException as error:
            raise EngineUnavailableError(
                f"cannot inspect network {reference!r}: {_reason(error)}"
            ) from None
        return NetworkRef(id=str(data.get("Id", "")), name=str(data.get("Name", "")))

    # --- images -----------------------------------------------------------------------

    def ensure_image(
        self, reference: str, policy: PullPolicy, auth: Mapping[str, str] | None = None
    ) -> str:
        """The image id of `reference`, pulled as the policy says (with `auth`, a registry
        login that is used for this pull only and never kept or logged)."""
        if policy is not PullPolicy.ALWAYS:
            known = self._image_ids.get(reference)
            if known is not None and time.monotonic() - known[1] < IMAGE_ID_REUSE_SECONDS:
                return known[0]
            try:
                image_id = str(self.api.inspect_image(reference)["Id"])
                self._image_ids[reference] = (image_id, time.monotonic())
                return image_id
            except ImageNotFound:
                if policy is PullPolicy.NEVER:
                    raise ImageUnavailableError(
                        f"image {reference!r} is not on the engine and the pull policy is never"
                    ) from None
            except (APIError, requests.RequestException) as error:
                raise EngineUnavailableError(
                    f"cannot inspect image {reference!r}: {_reason(error)}"
                ) from None
        repository, tag = _split_reference(reference)
        try:
            self.api.pull(repository, tag=tag, auth_config=dict(auth) if auth else None)
            return str(self.api.inspect_image(reference)["Id"])
        except (APIError, requests.RequestException) as error:
            raise ImageUnavailableError(
                f"image {reference!r} cannot be pulled: {_reason(error)}"
            ) from None

    # --- containers -------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        if spec.constraints or spec.preferences:
            raise EngineError(
                "placement is for the swarm backend, and this run is on the docker "
                "backend: drop the job's placement or set ORCHESTRATOR_BACKEND=swarm"
            )
        mounts = [
            Mount(
                target=plan.target,
                source=plan.source,
                type=plan.type,
                read_only=plan.read_only,
                **({"subpath": plan.subpath} if plan.subpath else {}),
            )
            for plan in spec.mounts
        ]
        host_config = self.api.create_host_config(
            mounts=mounts or None,
            port_bindings={key: [binding] for key, binding in spec.ports.items()} or None,
            mem_limit=spec.memory,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            pids_limit=spec.pids_limit,
            network_mode="host" if spec.host_network else spec.network,
            pid_mode="host" if spec.host_pid else None,
            privileged=spec.privileged,
            # The local driver keeps output byte for byte; json-file turns bytes that
            # are not UTF-8 into U+FFFD before anyone can read them.
            log_config=LogConfig(type="local"),
        )
        entrypoint, command = spec.entrypoint, spec.command
        if spec.merge_output:
            joined = merged(self._shape(spec.image, spec.labels), entrypoint, command)
            if joined is not None:
                entrypoint, command = joined
        try:
            created = self.api.create_container(
                spec.image,
                command=list(command) if command is not None else None,
                entrypoint=list(entrypoint) if entrypoint is not None else None,
                environment=dict(spec.environment),
                labels=dict(spec.labels),
                name=spec.name,
                working_dir=spec.working_dir,
                user=spec.user,
                ports=[tuple(key.split("/")) for key in spec.ports] or None,
                host_config=host_config,
            )
        except NotFound as error:
            if spec.network and "network" in _reason(error).lower():
                raise NetworkNotFoundError(f"network {spec.network!r} does not exist") from None
            raise EngineError(f"cannot create container: {_reason(error)}") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error(f"cannot create container for {spec.image!r}", error) from None
        return str(created["Id"])

    def _shape(self, image: str, labels: Mapping[str, str]) -> ImageShape:
        """The image's default entrypoint and command, and whether it has /bin/sh (asked
        of a container created, never started, from it: the engine stats the path)."""
        known = self._shapes.get(image)
        if known is not None:
            return known
        try:
            config = self.api.inspect_image(image).get("Config") or {}
        except (APIError, requests.RequestException) as error:
            raise _engine_error(f"cannot inspect image {image!r}", error) from None
        # The caller's own labels (a test's, an operator's), not ours: the probe is no
        # workload (a scheduler SIGKILLed in these milliseconds leaves it `Created`).
        marks = {
            key: value
            for key, value in labels.items()
            if key not in (MANAGED_LABEL, JOB_LABEL, RUN_LABEL, LAUNCH_LABEL)
        }
        marks[PROBE_LABEL] = "shell"
        has_shell = False
        try:
            probe = self.api.create_container(image, entrypoint=[SHELL], labels=marks)
        except (APIError, requests.RequestException) as error:
            raise _engine_error(f"cannot create container for {image!r}", error) from None
        try:
            url = self.api._url("/containers/{0}/archive", probe["Id"])
            answer = self.api.head(url, params={"path": SHELL})
            has_shell = answer.status_code == 200
            if answer.status_code not in (200, 404):
                log.warning(
                    "cannot tell whether image %s has %s (the engine answered %s): its "
                    "stdout and stderr are kept in the engine's order",
                    image[:19],
                    SHELL,
                    answer.status_code,
                )
        except requests.RequestException as error:
            raise _engine_error("cannot look into the image", error) from None
        finally:
            self.remove(str(probe["Id"]))
        shape = ImageShape(
            tuple(config.get("Entrypoint") or ()), tuple(config.get("Cmd") or ()), has_shell
        )
        self._shapes[image] = shape
        return shape

    def start(self, handle: Handle) -> None:
        try:
            self.api.start(handle)
        except (APIError, requests.RequestException) as error:
            reason = _reason(error)
            taken = _PORT_TAKEN.search(reason)
            if taken:
                port = int(taken["port1"] or taken["port2"])
                raise PortAllocatedError(port, reason) from None
            if re.search(r"network \S+ not found", reason):
                raise NetworkNotFoundError(f"cannot start the container: {reason}") from None
            raise _engine_error("cannot start the container", error) from None

    def wait(self, handle: Handle, timeout: float | None) -> ContainerExit | None:
        """The container's exit, or None if it is still running after `timeout` seconds."""
        try:
            result = self.api.wait(handle, timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as error:
            # docker-py surfaces the HTTP read timeout as either of these; an engine that
            # went away looks the same, so ask it whether the container still runs.
            if self.is_running(handle):
                if timeout is None:
                    raise EngineUnavailableError(
                        f"waiting for the container: {_reason(error)}"
                    ) from None
                return None
            try:
                result = self.api.wait(handle, timeout=10)
            except requests.RequestException as again:
                if isinstance(again, APIError) and not isinstance(again, NotFound):
                    raise _engine_error("waiting for the container", again) from None
                if isinstance(again, NotFound):
                    raise ContainerGoneError(f"container {handle[:12]} is gone") from None
                raise EngineUnavailableError(
                    f"waiting for the container: {_reason(again)}"
                ) from None
        except NotFound:
            raise ContainerGoneError(f"container {handle[:12]} is gone") from None
        except APIError as error:
            raise _engine_error("waiting for the container", error) from None
        exit_code = int(result.get("StatusCode", -1))
        # The kernel's OOM killer sends SIGKILL (137); only then is the state worth a call.
        state = self.state(handle) if exit_code == 137 else None
        error_text = (
            (result.get("Error") or {}).get("Message") if isinstance(result, dict) else None
        )
        return ContainerExit(
            exit_code=exit_code,
            oom_killed=bool(state and state.oom_killed),
            error=error_text or None,
        )

    def state(self, handle: Handle) -> WorkloadState | None:
        try:
            state: dict[str, Any] = self.api.inspect_container(handle).get("State", {})
        except NotFound:
            return None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("inspecting the container", error) from None
        running = bool(state.get("Running"))
        return WorkloadState(
            status=str(state.get("Status", "")),
            running=running,
            exit_code=None if running or "ExitCode" not in state else int(state["ExitCode"]),
            oom_killed=bool(state.get("OOMKilled")),
        )

    def is_running(self, handle: Handle) -> bool:
        state = self.state(handle)
        return state is not None and state.running

    def output(self, handle: Handle) -> Iterator[bytes]:
        return self.logs(handle, follow=False)

    def logs(
        self,
        handle: Handle,
        *,
        follow: bool,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[bytes]:
        """stdout and stderr as they come, interleaved: one chunk per log entry.

        Read in large blocks and split here: docker-py reads each entry with two socket
        reads, which made a job's output of short lines cost more CPU than the job.
        """
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
        }
        if since is not None:
            params["since"] = since
        try:
            url = self.api._url("/containers/{0}/logs", handle)
            response = self.api._get(url, params=params, stream=True)
            self.api._raise_for_status(response)
        except NotFound:
            raise ContainerGoneError(f"container {handle[:12]} is gone") from None
        except APIError as error:
            # A container being removed (or dead) is answered 409, not 404: gone all the
            # same for a reader (a fast job's follower removes it as a viewer arrives).
            if error.status_code == 409 and "marked for removal" in _reason(error):
                raise ContainerGoneError(
                    f"container {handle[:12]} is gone: {_reason(error)}"
                ) from None
            raise _engine_error("reading the container's output", error) from None
        except requests.RequestException as error:
            raise _engine_error("reading the container's output", error) from None
        try:
            yield from demultiplex(response.iter_content(chunk_size=LOG_BLOCK_BYTES))
        except requests.RequestException as error:
            raise EngineUnavailableError(
                f"lost the container's output stream: {_reason(error)}"
            ) from None
        finally:
            response.close()

    def follow_output(self, handle: Handle) -> Iterator[bytes]:
        """All of a container's output, live, to its very end (see
        logstream.follow_then_reread)."""
        return follow_then_reread(partial(self.logs, handle), partial(self._await_stop, handle))

    def _await_stop(self, handle: Handle, seconds: float = 10) -> None:
        # One wait, not a poll of the state: the engine answers when the container stops.
        with suppress(EngineError):  # ContainerGoneError too: the reread that follows tells
            self.wait(handle, seconds)

    def stop(self, handle: Handle, grace_seconds: int = 10) -> None:
        """SIGTERM, then SIGKILL after the grace period. A container already gone is fine."""
        try:
            self.api.stop(handle, timeout=grace_seconds)
        except NotFound:
            return
        except APIError as error:
            if "is not running" not in _reason(error):
                raise _engine_error("stopping the container", error) from None
        except requests.RequestException as error:  # the engine went away meanwhile
            raise _engine_error("stopping the container", error) from None

    def kill(self, handle: Handle) -> None:
        try:
            self.api.kill(handle)
        except NotFound:
            return
        except APIError as error:
            if "is not running" not in _reason(error):
                raise _engine_error("killing the container", error) from None
        except requests.RequestException as error:  # the engine went away meanwhile
            raise _engine_error("killing the container", error) from None

    def remove(self, handle: Handle) -> None:
        try:
            # v: the container's anonymous volumes (its image's VOLUME) go with it.
            self.api.remove_container(handle, force=True, v=True)
        except NotFound:
            return
        except APIError as error:
            if "already in progress" not in _reason(error):
                raise _engine_error("removing the container", error) from None
        except requests.RequestException as error:  # the engine went away meanwhile
            raise _engine_error("removing the container", error) from None

    def discard_unstarted(self, handle: Handle) -> bool:
        # Without force the engine refuses a running container, atomically with a start.
        try:
            self.api.remove_container(handle, force=False, v=True)
        except NotFound:
            return True
        except APIError as error:
            if error.status_code == 409:
                return False
            raise _engine_error("removing the container", error) from None
        except requests.RequestException as error:
            raise _engine_error("removing the container", error) from None
        return True

    def managed(self, *, run_id: int | None = None) -> list[ManagedWorkload]:
        labels = [f"{MANAGED_LABEL}=true"]
        if run_id is not None:
            labels.append(f"{RUN_LABEL}={run_id}")
        with _translated("listing our containers"):
            containers: list[dict[str, Any]] = self.api.containers(
                all=True, filters={"label": labels}
            )
        found = []
        for container in containers:
            marks = container.get("Labels") or {}
            run = marks.get(RUN_LABEL, "")
            found.append(
                ManagedWorkload(
                    handle=str(container["Id"]),
                    job=marks.get(JOB_LABEL),
                    run_id=int(run) if run.isdigit() else None,
                    status=str(container.get("State", "")),
                    launch=marks.get(LAUNCH_LABEL),
                )
            )
        return found

    def containers(self, labels: Mapping[str, str]) -> list[LabelledContainer]:
        return list_containers(self.api, labels)

    def container_events(self, labels: Mapping[str, str]) -> ContainerEvents:
        return DockerContainerEvents(self.api, labels)


def _split_reference(reference: str) -> tuple[str, str | None]:
    if "@" in reference:
        return reference, None
    name, _, tag = reference.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return reference, "latest"
