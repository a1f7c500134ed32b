"""The Swarm adapter: the engine contract over a Docker Swarm manager's service API.

A run is a service in `replicated-job` mode. `create` makes it with no completion asked
(nothing runs, and it carries our labels, so recovery finds it); `start` asks for one
completion, with restart condition none, and waits until the swarm has placed and
started the task or refused it: a task no node accepts (constraints, a missing image)
fails the start with the swarm's reason after the pending timeout, never pending for
ever. The handle is the service id. Output is the service's log (multiplexed frames, as
a container's), read and followed with engine/docker's log stream. Everything that is
not a service (images, volumes, networks, facts) is DockerEngine's, on the manager.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar

import requests
from docker.auth import encode_header
from docker.errors import APIError, NotFound
from docker.types import (
    ContainerSpec as SwarmContainerSpec,
)
from docker.types import (
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)

from orchestrator.engine.contract import (
    ContainerExit,
    ContainerSpec,
    Engine,
    Handle,
    ManagedWorkload,
    WorkloadState,
)
from orchestrator.engine.docker.adapter import DockerEngine
from orchestrator.engine.docker.execs import EXEC_PREFIX, ExecEngine
from orchestrator.engine.docker.logstream import LOG_BLOCK_BYTES, demultiplex, follow_then_reread
from orchestrator.engine.docker.merging import merged
from orchestrator.engine.docker.translate import _engine_error, _reason, _translated
from orchestrator.errors import (
    ContainerGoneError,
    EngineError,
    EngineUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.labels import JOB_LABEL, LAUNCH_LABEL, MANAGED_LABEL, RUN_LABEL
from orchestrator.spec import PullPolicy

_P = ParamSpec("_P")
_R = TypeVar("_R")

DEFAULT_PENDING_TIMEOUT = 300.0
POLL_SECONDS = 0.2
# Task states (swarmkit's): before it runs, while it runs, and its ends.
_BEFORE = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
_EXITED_NONZERO = "task: non-zero exit"
_OUT_OF_SEQUENCE = "update out of sequence"
_UPDATE_ATTEMPTS = 5
PORTS_LABEL = "orchestrator.swarm.ports"
_PORT_IN_USE = re.compile(r"port '?(?P<port>\d+)'? is already in use")


def _or_exec(
    method: Callable[Concatenate[SwarmEngine, Handle, _P], _R],
) -> Callable[Concatenate[SwarmEngine, Handle, _P], _R]:
    """An exec job's handle (a command in a container on this manager) goes to the
    Docker adapter's exec workloads; a service's to the method."""
    name = method.__name__

    def either(self: SwarmEngine, handle: Handle, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if handle.startswith(EXEC_PREFIX):
            result: _R = getattr(ExecEngine, name)(self, handle, *args, **kwargs)
            return result
        return method(self, handle, *args, **kwargs)

    either.__name__ = name
    return either


class SwarmEngine(ExecEngine):
    """The engine contract on a Swarm manager: runs are replicated-job services (exec
    jobs run in containers of this manager, as on the docker backend)."""

    def __init__(self, client: Any, pending_timeout: float = DEFAULT_PENDING_TIMEOUT) -> None:
        super().__init__(client)
        self.pending_timeout = pending_timeout
        # Registry logins of the images ensured, handed to the service (every node pulls).
        self._auth: dict[str, Mapping[str, str]] = {}
        # Runs we ended by removing their service (their task was on another node).
        self._ended: dict[Handle, ContainerExit] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls,
        *,
        timeout: int = 60,
        max_pool_size: int = 32,
        pending_timeout: float = DEFAULT_PENDING_TIMEOUT,
    ) -> SwarmEngine:
        docker_engine = DockerEngine.from_env(timeout=timeout, max_pool_size=max_pool_size)
        return cls(docker_engine.client, pending_timeout)

    # --- the swarm itself -------------------------------------------------------------

    def swarm_facts(self) -> dict[str, Any]:
        """Whether this engine is in a swarm and a manager, and the swarm's nodes."""
        with _translated("reading the engine's info"):
            info = (self.client.info() or {}).get("Swarm") or {}
        state = str(info.get("LocalNodeState", ""))
        manager = bool(info.get("ControlAvailable"))
        nodes: list[dict[str, str]] = []
        if manager:
            with _translated("listing the swarm's nodes"):
                for node in self.api.nodes():
                    spec, status = node.get("Spec") or {}, node.get("Status") or {}
                    nodes.append(
                        {
                            "name": str((node.get("Description") or {}).get("Hostname", "")),
                            "role": str(spec.get("Role", "")),
                            "availability": str(spec.get("Availability", "")),
                            "state": str(status.get("State", "")),
                        }
                    )
        return {"state": state, "manager": manager, "node_id": info.get("NodeID"), "nodes": nodes}

    def ensure_image(
        self, reference: str, policy: PullPolicy, auth: Mapping[str, str] | None = None
    ) -> str:
        if auth:
            with self._lock:
                self._auth[reference] = dict(auth)
        return super().ensure_image(reference, policy, auth)

    # --- runs as services -------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        for plan in spec.mounts:
            if plan.type == "bind" and not spec.bind_on_every_node:
                raise EngineError(
                    f"the bind of a host path to {plan.target} is refused on the swarm "
                    "backend: the task may run on a node without this host's paths (the "
                    "job may say bind_on_every_node: true when every node has them)"
                )
        entrypoint, command = spec.entrypoint, spec.command
        if spec.merge_output:
            joined = merged(self._shape(spec.image, spec.labels), entrypoint, command)
            if joined is not None:
                entrypoint, command = joined
        mounts = [
            Mount(target=p.target, source=p.source, type=p.type, read_only=p.read_only)
            for p in spec.mounts
        ]
        container = SwarmContainerSpec(
            spec.image,
            command=list(entrypoint) if entrypoint is not None else None,
            args=list(command) if command is not None else None,
            env=dict(spec.environment) or None,
            workdir=spec.working_dir,
            user=spec.user,
            labels=dict(spec.labels),
            mounts=mounts or None,
        )
        limits = Resources(
            cpu_limit=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=spec.memory,
            cpu_reservation=int(spec.cpus_reserved * 1e9) if spec.cpus_reserved else None,
            mem_reservation=spec.memory_reserved,
        )
        template = TaskTemplate(
            container,
            resources=limits,
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(
                constraints=list(spec.constraints) or None,
                preferences=[("spread", p) for p in spec.preferences] or None,
            ),
            networks=[spec.network] if spec.network else None,
            log_driver={"Name": "local"},
        )
        # Published at start, as Docker binds a container's ports at its start: a port
        # taken then fails the start and leaves the run's service unstarted.
        ports = ",".join(
            f"{published}:{key.partition('/')[0]}/{key.partition('/')[2] or 'tcp'}/{spec.port_mode}"
            for key, (_host_ip, published) in spec.ports.items()
        )
        labels = {**spec.labels, PORTS_LABEL: ports} if ports else dict(spec.labels)
        # The run's name, and a part no other service has: two schedulers, or a run
        # made again after a crash, never meet on one name.
        name = f"{spec.name[:50]}-{uuid.uuid4().hex[:8]}"
        auth = self._auth.get(spec.image)
        try:
            body = {
                "Name": name,
                "Labels": labels,
                "TaskTemplate": template,
                "Mode": ServiceMode("replicated-job", replicas=0),
            }
            # with_registry_auth: the login goes with the service, so every node can pull.
            headers = {"X-Registry-Auth": encode_header(dict(auth))} if auth else {}
            answer = self.api._post_json(
                self.api._url("/services/create"), data=body, headers=headers
            )
            created = self.api._result(answer, json=True)
        except NotFound as error:
            if spec.network:
                raise NetworkNotFoundError(f"network {spec.network!r} does not exist") from None
            raise EngineError(f"cannot create the service: {_reason(error)}") from None
        except (APIError, requests.RequestException) as error:
            reason = _reason(error)
            if spec.network and "network" in reason and "not found" in reason:
                raise NetworkNotFoundError(f"network {spec.network!r} does not exist") from None
            raise _engine_error(f"cannot create a service for {spec.image!r}", error) from None
        return str(created["ID"])

    @_or_exec
    def start(self, handle: Handle) -> None:
        """One completion asked; returns once the task runs (or already ended)."""
        for attempt in range(_UPDATE_ATTEMPTS):
            try:
                info = self._ask_one_completion(handle)
                break
            except NotFound:
                raise ContainerGoneError(f"service {handle[:12]} is gone") from None
            except (APIError, requests.RequestException) as error:
                reason = _reason(error)
                # The swarm bumped the service's version between our read and our
                # update (it does so once it has allocated a new service): read again.
                if _OUT_OF_SEQUENCE in reason and attempt + 1 < _UPDATE_ATTEMPTS:
                    time.sleep(POLL_SECONDS)
                    continue
                taken = _PORT_IN_USE.search(reason)
                if taken:
                    raise PortAllocatedError(int(taken["port"]), reason) from None
                raise _engine_error("cannot start the service's task", error) from None
        deadline = time.monotonic() + self.pending_timeout
        while True:
            task = self._task(handle)
            state = str(task["Status"].get("State", "")) if task else "new"
            if state not in _BEFORE:
                break
            if time.monotonic() >= deadline:
                why = str((task or {}).get("Status", {}).get("Err") or "") or state
                self.remove(handle)
                raise EngineError(
                    f"the swarm did not start the task within {self.pending_timeout:g} s: {why}"
                )
            time.sleep(POLL_SECONDS)
        assert task is not None
        why = str(task["Status"].get("Err") or "")
        if state == "rejected" or (why and not why.startswith(_EXITED_NONZERO)):
            if "port" in why and ("in use" in why or "allocated" in why):
                published = [p.get("PublishedPort") for p in _ports_of(info)]
                raise PortAllocatedError(int(published[0] or 0) if published else 0, why)
            raise EngineError(f"the swarm could not start the task: {why or state}")

    def _ask_one_completion(self, handle: Handle) -> dict[str, Any]:
        info: dict[str, Any] = self.api.inspect_service(handle)
        service_spec = dict(info["Spec"])
        service_spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
        ports = _ports_asked(service_spec.get("Labels") or {})
        if ports:
            service_spec["EndpointSpec"] = {"Ports": ports}
        url = self.api._url("/services/{0}/update", handle)
        answer = self.api._post_json(
            url, data=service_spec, params={"version": info["Version"]["Index"]}
        )
        self.api._raise_for_status(answer)
        return info

    def _task(self, handle: Handle) -> dict[str, Any] | None:
        """The service's one task (its newest), None before the swarm made it."""
        try:
            tasks: list[dict[str, Any]] = self.api.tasks(filters={"service": handle})
        except NotFound:
            raise ContainerGoneError(f"service {handle[:12]} is gone") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("listing the service's tasks", error) from None
        # A service's filter matches a name's prefix too: keep this service's own.
        tasks = [task for task in tasks if task.get("ServiceID") == handle]
        if not tasks:
            return None
        return max(tasks, key=lambda task: str(task.get("CreatedAt", "")))

    def _exists(self, handle: Handle) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.inspect_service(handle)
        except NotFound:
            return None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("inspecting the service", error) from None
        return found

    @_or_exec
    def wait(self, handle: Handle, timeout: float | None) -> ContainerExit | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ended = self._ended.get(handle)
            if ended is not None:
                return ended
            if self._exists(handle) is None:
                raise ContainerGoneError(f"service {handle[:12]} is gone")
            task = self._task(handle)
            if task is not None and task["Status"].get("State") in _ENDED:
                return _exit_of(task)
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)

    @_or_exec
    def state(self, handle: Handle) -> WorkloadState | None:
        ended = self._ended.get(handle)
        if ended is not None:
            return WorkloadState("exited", False, ended.exit_code)
        info = self._exists(handle)
        if info is None:
            return None
        task = self._task(handle)
        if task is None:
            asked = (info["Spec"].get("Mode") or {}).get("ReplicatedJob") or {}
            return WorkloadState(
                "created" if not asked.get("TotalCompletions") else "running",
                bool(asked.get("TotalCompletions")),
            )
        state = str(task["Status"].get("State", ""))
        if state in _ENDED:
            return WorkloadState("exited", False, _exit_of(task).exit_code)
        return WorkloadState("running", True)

    @_or_exec
    def is_running(self, handle: Handle) -> bool:
        state = self.state(handle)
        return state is not None and state.running

    @_or_exec
    def output(self, handle: Handle) -> Iterator[bytes]:
        return self.logs(handle, follow=False)

    @_or_exec
    def follow_output(self, handle: Handle) -> Iterator[bytes]:
        return follow_then_reread(partial(self.logs, handle), partial(self._await_stop, handle))

    def logs(
        self,
        handle: Handle,
        *,
        follow: bool,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[bytes]:
        """The service's log entries. A service's follow does not end with its task:
        a watcher ends it once the task has ended (the reread after it gets the rest)."""
        if self._exists(handle) is None:
            raise ContainerGoneError(f"service {handle[:12]} is gone")
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
        }
        if since is not None:
            params["since"] = since
        try:
            url = self.api._url("/services/{0}/logs", handle)
            response = self.api._get(url, params=params, stream=True)
            self.api._raise_for_status(response)
        except NotFound:
            raise ContainerGoneError(f"service {handle[:12]} is gone") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("reading the service's output", error) from None
        done = threading.Event()
        if follow:
            threading.Thread(
                target=self._close_when_ended, args=(handle, response, done), daemon=True
            ).start()
        try:
            yield from demultiplex(response.iter_content(chunk_size=LOG_BLOCK_BYTES))
        except (requests.RequestException, AttributeError, ValueError) as error:
            if not done.is_set():
                raise EngineUnavailableError(
                    f"lost the service's output stream: {_reason(error)}"
                ) from None
        finally:
            done.set()
            response.close()

    def _close_when_ended(self, handle: Handle, response: Any, done: threading.Event) -> None:
        while not done.is_set():
            with suppress(EngineError):
                task = self._task(handle)
                if task is None and self._exists(handle) is None:
                    break
                if task is not None and task["Status"].get("State") in _ENDED:
                    done.wait(0.5)  # the last entries on their way
                    break
            done.wait(POLL_SECONDS * 2)
        done.set()
        # Closing the response from here does not wake a blocked read; shutting its
        # socket down does (the read then ends as the stream's end).
        with suppress(Exception):
            response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        with suppress(Exception):
            response.close()

    def _await_stop(self, handle: Handle, seconds: float = 10) -> None:
        with suppress(EngineError):
            self.wait(handle, seconds)

    @_or_exec
    def stop(self, handle: Handle, grace_seconds: int = 10) -> None:
        self._signal(handle, partial(self.api.stop, timeout=grace_seconds), 143)

    @_or_exec
    def kill(self, handle: Handle) -> None:
        self._signal(handle, self.api.kill, 137)

    def _signal(self, handle: Handle, how: Any, exit_code: int) -> None:
        """Signal the task's container where we can reach it (this node); a task on
        another node is ended by removing its service, its exit recorded as `exit_code`."""
        if self._exists(handle) is None:
            return
        task = self._task(handle)
        if task is None or task["Status"].get("State") in _ENDED:
            return
        container = ((task["Status"].get("ContainerStatus") or {}).get("ContainerID")) or ""
        if container:
            try:
                how(container)
                self._await_stop(handle, 15)
                return
            except NotFound:
                pass  # another node's container: the service goes instead
            except APIError as error:
                if "is not running" in _reason(error):
                    return
                raise _engine_error("ending the task's container", error) from None
            except requests.RequestException as error:
                raise _engine_error("ending the task's container", error) from None
        self._ended[handle] = ContainerExit(exit_code, error="removed with its service")
        self.remove(handle)

    @_or_exec
    def remove(self, handle: Handle) -> None:
        try:
            self.api.remove_service(handle)
        except NotFound:
            return
        except (APIError, requests.RequestException) as error:
            raise _engine_error("removing the service", error) from None

    @_or_exec
    def discard_unstarted(self, handle: Handle) -> bool:
        info = self._exists(handle)
        if info is None:
            return True
        asked = (info["Spec"].get("Mode") or {}).get("ReplicatedJob") or {}
        if asked.get("TotalCompletions"):
            return False
        self.remove(handle)
        return True

    def managed(self, *, run_id: int | None = None) -> list[ManagedWorkload]:
        labels = [f"{MANAGED_LABEL}=true"]
        if run_id is not None:
            labels.append(f"{RUN_LABEL}={run_id}")
        with _translated("listing our services"):
            services: list[dict[str, Any]] = self.api.services(filters={"label": labels})
        found = []
        for service in services:
            marks = (service.get("Spec") or {}).get("Labels") or {}
            run = marks.get(RUN_LABEL, "")
            handle = str(service["ID"])
            state = self.state(handle)
            found.append(
                ManagedWorkload(
                    handle=handle,
                    job=marks.get(JOB_LABEL),
                    run_id=int(run) if run.isdigit() else None,
                    status=state.status if state else "removing",
                    launch=marks.get(LAUNCH_LABEL),
                )
            )
        return found

    def published_ports(self) -> set[tuple[str, int, str]]:
        """Ports of the host's containers (host mode too) and of every service's endpoint."""
        found = super().published_ports()
        with _translated("listing services"):
            services = self.api.services()
        for service in services:
            for port in _ports_of(service):
                if port.get("PublishedPort"):
                    found.add(
                        ("0.0.0.0", int(port["PublishedPort"]), str(port.get("Protocol", "tcp")))
                    )
        return found


def _ports_asked(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The endpoint's ports from the label `create` wrote them in."""
    ports = []
    for item in filter(None, str(labels.get(PORTS_LABEL, "")).split(",")):
        published, _, rest = item.partition(":")
        target, protocol, mode = rest.split("/")
        ports.append(
            {
                "PublishedPort": int(published),
                "TargetPort": int(target),
                "Protocol": protocol,
                "PublishMode": mode,
            }
        )
    return ports


def _ports_of(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    endpoint = service.get("Endpoint") or {}
    ports = endpoint.get("Ports") or ((service.get("Spec") or {}).get("EndpointSpec") or {}).get(
        "Ports"
    )
    return list(ports or [])


def _exit_of(task: Mapping[str, Any]) -> ContainerExit:
    status = task.get("Status") or {}
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    error = str(status.get("Err") or "")
    if code is None or (status.get("State") == "rejected"):
        return ContainerExit(-1, error=error or str(status.get("State", "")))
    return ContainerExit(
        int(code), error=None if not error or error.startswith(_EXITED_NONZERO) else error
    )


def _conforms(engine: SwarmEngine) -> Engine:
    return engine  # mypy checks that the adapter keeps the contract
