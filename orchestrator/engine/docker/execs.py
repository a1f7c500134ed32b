"""Exec workloads on Docker: a command run inside a running container, behind the same
handle calls as a container (start, wait, output, stop, state, remove).

The engine cannot kill an exec, so the command runs under a small `sh` supervisor: it
writes its pid to a file under /tmp named by the exec's token and `exec`s the command
(stderr joined to stdout). The engine starts every exec as its own session leader, so
that pid is the process group of the command and of every child that does not leave
the group; a stop is a second exec that sends the group SIGTERM, then SIGKILL after the
grace. A container with no `sh` runs the command bare, and a stop says it cannot.

A handle is `exec:<container id, short>:<exec id>:<token>:<s|b>` (supervised or bare;
101 characters, within the run's container column), so that a scheduler that did not
start the exec (an adopter) can wait for it and stop it."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import requests
from docker.errors import APIError, NotFound

from orchestrator.engine.contract import (
    ContainerExit,
    Engine,
    ExecSpec,
    ExecTarget,
    Handle,
    WorkloadState,
)
from orchestrator.engine.docker.adapter import DockerEngine
from orchestrator.engine.docker.translate import _engine_error
from orchestrator.errors import ContainerGoneError, EngineError

EXEC_PREFIX = "exec:"
POLL_SECONDS = 0.2
# After the command's end, output still held open by a child is read this much longer.
DRAIN_SECONDS = 2.0
STOP_PATIENCE_SECONDS = 120.0
SUPERVISOR = (
    'echo $$ > "$0" 2>/dev/null || echo "orchestrator: cannot write $0: a timeout or '
    'cancel cannot stop this command" >&2; exec "$@" 2>&1'
)
# $0: the pid file; $1: the grace in seconds. The group is gone: nothing to do.
STOPPER = (
    'p=$(cat "$0" 2>/dev/null) || exit 0; kill -TERM -- "-$p" 2>/dev/null || exit 0; i=0; '
    'while kill -0 -- "-$p" 2>/dev/null && [ "$i" -lt "$1" ]; do sleep 1; i=$((i+1)); done; '
    'kill -KILL -- "-$p" 2>/dev/null; rm -f "$0"; exit 0'
)
_SOCKET_DIRS = ("/run", "/var/run")


def is_exec(handle: Handle) -> bool:
    return handle.startswith(EXEC_PREFIX)


def pid_file(token: str) -> str:
    return f"/tmp/orchestrator-exec-{token}.pid"


@dataclass(frozen=True)
class _Parts:
    container_id: str
    exec_id: str
    token: str
    supervised: bool

    @classmethod
    def of(cls, handle: Handle) -> _Parts:
        _, container_id, exec_id, token, how = handle.split(":")
        return cls(container_id, exec_id, token, how == "s")


@dataclass
class _Reader:
    """The output of an exec we started, read from its start so that it never blocks."""

    chunks: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    stream: Any = None  # the SDK's CancellableStream

    def __post_init__(self) -> None:
        # The socket under the stream, held from the start: once the stream has ended,
        # the SDK's close finds the response closed and leaves the socket open.
        self._socket: Any = None
        with suppress(AttributeError):
            self._socket = self.stream._response.raw._fp.fp.raw._sock

    def close(self) -> None:
        with suppress(Exception):
            self.stream.close()
        if self._socket is not None:
            with suppress(OSError):
                self._socket.close()

    def read(self) -> None:
        try:
            for chunk in self.stream:
                with self.changed:
                    self.chunks.append(chunk)
                    self.changed.notify_all()
        except (requests.RequestException, APIError, OSError):
            pass  # the container went away: what was read stands
        finally:
            self.close()
            self.done.set()
            with self.changed:
                self.changed.notify_all()


class ExecEngine(DockerEngine):
    """DockerEngine with exec workloads (see the module doc)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._readers: dict[Handle, _Reader] = {}
        # Stops in flight: an exec ended by our stop is reported ended only once the stop
        # call has returned, so that its caller (a timeout) has marked it as its doing.
        self._stops: dict[Handle, threading.Event] = {}

    # --- targets ------------------------------------------------------------------------

    def exec_target(self, reference: str) -> ExecTarget | None:
        try:
            data = self.api.inspect_container(reference)
        except NotFound:
            return None
        except (APIError, requests.RequestException) as error:
            raise _engine_error(f"inspecting container {reference!r}", error) from None
        return _target(data)

    def exec_targets(self, selector: Mapping[str, str]) -> list[ExecTarget]:
        labels = [f"{key}={value}" for key, value in selector.items()]
        try:
            found = self.api.containers(filters={"label": labels, "status": "running"})
            details = [self.api.inspect_container(item["Id"]) for item in found]
        except NotFound:  # removed between the list and the inspect
            return self.exec_targets(selector)
        except (APIError, requests.RequestException) as error:
            raise _engine_error("listing the containers of a selector", error) from None
        return sorted((_target(data) for data in details), key=lambda target: target.name)

    # --- the exec's life ----------------------------------------------------------------

    def create_exec(self, spec: ExecSpec) -> Handle:
        token = secrets.token_hex(8)
        supervised = self._has_shell(spec.container_id)
        command = list(spec.command)
        if supervised:
            command = ["sh", "-c", SUPERVISOR, pid_file(token), *command]
        try:
            made = self.api.exec_create(
                spec.container_id,
                command,
                stdout=True,
                stderr=True,
                user=spec.user or "",
                workdir=spec.working_dir,
                environment=dict(spec.environment),
            )
        except NotFound:
            raise ContainerGoneError(f"container {spec.container_id[:12]} is gone") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("cannot create the exec", error) from None
        how = "s" if supervised else "b"
        return f"{EXEC_PREFIX}{spec.container_id[:12]}:{made['Id']}:{token}:{how}"

    def _has_shell(self, container_id: str) -> bool:
        try:
            return self._run(container_id, ["sh", "-c", "exit 0"]) == 0
        except EngineError:
            return False

    def _run(self, container_id: str, command: list[str], user: str = "") -> int | None:
        """A short exec of ours to its end (started detached: no stream to close): its
        exit code."""
        try:
            made = self.api.exec_create(container_id, command, user=user)
            self.api.exec_start(made["Id"], detach=True)
            while (data := self.api.exec_inspect(made["Id"])).get("Running"):
                time.sleep(POLL_SECONDS / 4)
        except NotFound:
            raise ContainerGoneError(f"container {container_id[:12]} is gone") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("running an exec", error) from None
        code = data.get("ExitCode")
        return None if code is None else int(code)

    def start(self, handle: Handle) -> None:
        if not is_exec(handle):
            return super().start(handle)
        parts = _Parts.of(handle)
        try:
            stream = self.api.exec_start(parts.exec_id, stream=True)
        except NotFound:
            raise ContainerGoneError(f"container {parts.container_id[:12]} is gone") from None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("cannot start the exec", error) from None
        reader = _Reader(stream=stream)
        self._readers[handle] = reader
        threading.Thread(target=reader.read, name=f"exec-{parts.token}", daemon=True).start()

    def _inspect(self, handle: Handle) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = self.api.exec_inspect(_Parts.of(handle).exec_id)
        except NotFound:
            return None
        except (APIError, requests.RequestException) as error:
            raise _engine_error("inspecting the exec", error) from None
        return data

    def wait(self, handle: Handle, timeout: float | None) -> ContainerExit | None:
        if not is_exec(handle):
            return super().wait(handle, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self._inspect(handle)
            if data is None:
                raise ContainerGoneError(f"container {_Parts.of(handle).container_id[:12]} is gone")
            if not data.get("Running") and data.get("ExitCode") is not None:
                stopping = self._stops.get(handle)
                if stopping is not None:
                    stopping.wait(STOP_PATIENCE_SECONDS)
                    time.sleep(POLL_SECONDS)
                return ContainerExit(exit_code=int(data["ExitCode"]))
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)

    def state(self, handle: Handle) -> WorkloadState | None:
        if not is_exec(handle):
            return super().state(handle)
        data = self._inspect(handle)
        if data is None:
            return None
        running = bool(data.get("Running"))
        code = data.get("ExitCode")
        return WorkloadState(
            status="running" if running else "exited" if code is not None else "created",
            running=running,
            exit_code=None if running or code is None else int(code),
        )

    def follow_output(self, handle: Handle) -> Iterator[bytes]:
        if not is_exec(handle):
            return super().follow_output(handle)
        return self._chunks(handle)

    def output(self, handle: Handle) -> Iterator[bytes]:
        if not is_exec(handle):
            return super().output(handle)
        reader = self._readers.get(handle)
        if reader is None:  # not started here: the engine keeps no output of an exec
            return iter(())
        reader.done.wait(DRAIN_SECONDS)
        with reader.changed:
            return iter(list(reader.chunks))

    def _chunks(self, handle: Handle) -> Iterator[bytes]:
        reader = self._readers.get(handle)
        if reader is None:
            return
        sent = 0
        ended_at: float | None = None
        while True:
            with reader.changed:
                if sent == len(reader.chunks) and not reader.done.is_set():
                    reader.changed.wait(POLL_SECONDS)
                fresh = reader.chunks[sent:]
            sent += len(fresh)
            yield from fresh
            if reader.done.is_set() and sent == len(reader.chunks):
                return
            if not fresh:
                if ended_at is None and not self.is_running(handle):
                    ended_at = time.monotonic()
                if ended_at is not None and time.monotonic() - ended_at > DRAIN_SECONDS:
                    return  # a child keeps the output open past the command's end

    def stop(self, handle: Handle, grace_seconds: int = 10) -> None:
        """The command's process group: SIGTERM, SIGKILL after the grace."""
        if not is_exec(handle):
            return super().stop(handle, grace_seconds)
        parts = _Parts.of(handle)
        if not parts.supervised:
            if self.is_running(handle):
                raise EngineError(
                    f"cannot stop the exec in container {parts.container_id[:12]}: its image "
                    "has no sh, so its command runs on"
                )
            return
        stopper = ["sh", "-c", STOPPER, pid_file(parts.token), str(max(grace_seconds, 0))]
        stopped = self._stops.setdefault(handle, threading.Event())
        stopped.clear()
        try:
            self._run(parts.container_id, stopper, user="0")
        except ContainerGoneError:
            return
        except EngineError as error:
            if "is not running" not in str(error):
                raise
        finally:
            stopped.set()

    def kill(self, handle: Handle) -> None:
        if not is_exec(handle):
            return super().kill(handle)
        self.stop(handle, 0)

    def remove(self, handle: Handle) -> None:
        if not is_exec(handle):
            return super().remove(handle)
        self._stops.pop(handle, None)
        reader = self._readers.pop(handle, None)
        if reader is not None and not reader.done.wait(DRAIN_SECONDS):
            reader.close()  # a child holds the output open: ours is done

    def discard_unstarted(self, handle: Handle) -> bool:
        if not is_exec(handle):
            return super().discard_unstarted(handle)
        return not self.is_running(handle)


def _target(data: Mapping[str, Any]) -> ExecTarget:
    host = data.get("HostConfig") or {}
    sockets = any(
        (mount.get("Type") == "bind" and _holds_socket(str(mount.get("Source") or "")))
        for mount in data.get("Mounts") or ()
    )
    return ExecTarget(
        id=str(data["Id"]),
        name=str(data.get("Name") or "").lstrip("/"),
        running=bool((data.get("State") or {}).get("Running")),
        privileged=bool(host.get("Privileged")),
        holds_socket=sockets,
    )


def _holds_socket(source: str) -> bool:
    source = source.rstrip("/") or "/"
    return (
        source in ("/", "/var")
        or source.endswith("docker.sock")
        or any(source == d or source.startswith(f"{d}/docker") for d in _SOCKET_DIRS)
    )


def _conforms(engine: ExecEngine) -> Engine:
    return engine  # mypy checks that the adapter keeps the contract
