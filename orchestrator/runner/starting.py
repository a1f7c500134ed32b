"""Start a run's container: its secrets read, its image pulled, its mounts planned and
checked (and pinned: pinning.py), then the container created and started, host ports
leased (another one tried when the engine says a pool port is taken outside our
ledger), and a create or start the engine did not answer reconciled before it is tried
again: the container it may have made is found by its launch label, kept if it
started, removed if not, so a run never has two
containers and none is left `Created`.

An exec workload (a command in a running container) or a Swarm service would be another
starter beside `ContainerStarter`, with the same `start` and the same reconciling."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, TypeVar

from orchestrator.backoff import with_backoff
from orchestrator.engine import Engine
from orchestrator.engine.errors import (
    EngineError,
    EngineUnavailableError,
    NetworkNotFoundError,
    PortAllocatedError,
)
from orchestrator.errors import TakenOverError
from orchestrator.hostpaths import MountPlan, SelfContainer
from orchestrator.policies.hostports import low_port_problem
from orchestrator.policies.networks import (
    check_network_joined,
    check_network_named,
    joins_network,
)
from orchestrator.policies.safety import HostPolicy, UnsafeJobError
from orchestrator.policies.secret_grants import check_job
from orchestrator.ports import PinnedPortTakenError, PortPoolExhaustedError
from orchestrator.records import RunRecord
from orchestrator.runner.container import container_name, container_spec
from orchestrator.runner.mounts import engine_socket_on_host, plan_mounts
from orchestrator.runner.pinning import BindPinner
from orchestrator.runner.port_leaser import PortLeaser
from orchestrator.runner.secretfiles import (
    LaunchSecrets,
    identify,
    load_launch_secrets,
    read_secret,
    registry_login,
)
from orchestrator.spec import JobSpec

if TYPE_CHECKING:
    from orchestrator.runner.launch_settings import LaunchSettings

log = logging.getLogger(__name__)
# States of a container that has started (it may have ended since).
STARTED_STATES = frozenset({"running", "exited", "paused", "restarting"})
T = TypeVar("T")
# Records the container made for a run (run id, container, image); False when another
# scheduler adopted the run meanwhile.
RecordContainer = Callable[[int, str, str], bool]


def when_engine_answers(action: Callable[[], T], patience_seconds: float) -> T:
    """An engine call before the container starts, retried while the engine is away
    (for up to `patience_seconds`): the run starts late instead of failing."""
    return with_backoff(
        action,
        retry_on=EngineUnavailableError,
        patience_seconds=patience_seconds,
        what="engine unavailable",
    )


@dataclass(frozen=True)
class Started:
    """A run's workload that has started: its handle, the host ports it publishes, and
    the secret values to mask in its output."""

    handle: str
    ports: dict[str, int]
    masked: tuple[bytes, ...]


@dataclass(eq=False)
class ContainerStarter:
    """Starts one container per launch; at most as many create and start calls in
    flight as `engine_calls` allows."""

    engine: Engine
    leaser: PortLeaser
    where: SelfContainer
    settings: LaunchSettings
    _: KW_ONLY
    engine_calls: threading.BoundedSemaphore
    record_container: RecordContainer
    remove: Callable[[str], None]

    def __post_init__(self) -> None:
        self.policy = HostPolicy(
            allow_privileged_jobs=self.settings.allow_privileged_jobs,
            allowed_host_paths=self.settings.allowed_host_paths,
            engine_sockets=engine_socket_on_host(self.settings.engine_socket, self.where),
            allowed_volumes=self.settings.allowed_volumes,
            guarded_volumes=tuple(m.source for m in self.where.mounts if m.type == "volume"),
            project=self.where.project,
        )
        self.pinner = BindPinner(
            self.where,
            self.settings.engine_socket,
            allow_unpinned=self.settings.allow_unpinned_binds,
        )

    def start(self, run: RunRecord, spec: JobSpec, created: list[str]) -> Started:
        """Prepare and start the run's container. Every container made is appended to
        `created` the moment the engine made it (for the caller to remove at the end)."""
        low_port = low_port_problem(spec, self.settings.allow_low_ports)
        if low_port is not None:
            raise UnsafeJobError(low_port)
        patience = self.settings.engine_patience_seconds
        check_job(spec, self.settings.secret_policy, identify)
        # Checked again on each file as opened: a link swapped since is refused.
        given = load_launch_secrets(spec, self.settings.secrets_dir, self.settings.secret_policy)
        plans = plan_mounts(
            spec,
            self.where,
            self.policy,
            given,
            self.engine.api_version,
            engine_socket=self.settings.engine_socket,
            engine_address=self.settings.engine_address,
            volume_facts=self.engine.volume,
        )
        if joins_network(spec):
            self._check_network(spec, patience)
        # Only now, every check passed: a refused job makes the engine pull nothing.
        auth = self._registry_login(spec.image)
        image_id = when_engine_answers(
            lambda: self.engine.ensure_image(spec.image, spec.pull, auth), patience
        )
        with self.pinner.pinned(spec.name, plans) as pinned:
            handle, ports = self._start_container(run, spec, image_id, pinned, given, created)
        return Started(handle, ports, given.masked)

    def _check_network(self, spec: JobSpec, patience: float) -> None:
        """The network the engine will join the job to, checked by the network policy."""
        check_network_named(spec, self.settings.allowed_networks)
        joined = when_engine_answers(lambda: self.engine.find_network(spec.network or ""), patience)
        if joined is None:
            raise NetworkNotFoundError(f"network {spec.network!r} does not exist")
        check_network_joined(spec, joined, self.where.networks, self.settings.allowed_networks)

    def _registry_login(self, image: str) -> dict[str, str] | None:
        name = self.settings.registry_auth
        if name is None:
            return None
        raw = read_secret(self.settings.secrets_dir, name)
        return registry_login(raw.decode("utf-8", "replace"), image, f"secret {name!r}")

    def _start_container(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        given: LaunchSecrets,
        created: list[str],
    ) -> tuple[str, dict[str, int]]:
        """Create and start the container, retried (with backoff, for up to the engine
        patience) while the engine does not answer; before each retry, what the call
        that got no answer did is reconciled (see the module doc)."""
        launch = secrets.token_hex(8)
        leased: dict[str, int] = {}
        tries = 0

        def attempt() -> tuple[str, dict[str, int]]:
            nonlocal tries
            tries += 1
            if tries > 1:
                started = self._reconcile(run, launch, created)
                if started is not None:
                    log.info(
                        "run %s: the container started though the engine did not say so", run.id
                    )
                    return started, dict(leased)
                self.leaser.release(run.id)
                leased.clear()
            return self._create_and_start(
                run, spec, image_id, plans, given, launch, created, leased
            )

        return when_engine_answers(attempt, self.settings.engine_patience_seconds)

    def _reconcile(self, run: RunRecord, launch: str, created: list[str]) -> str | None:
        """After a create or start the engine did not answer: the container of this
        launch that started (to follow), or None, every other one of it removed."""
        found = [w for w in self.engine.managed(run_id=run.id) if w.launch == launch]
        started = next((w.handle for w in found if w.status in STARTED_STATES), None)
        for workload in found:
            if workload.handle not in created:
                created.append(workload.handle)
        for handle in list(created):
            if handle != started:
                with self.engine_calls:
                    self.engine.remove(handle)
                created.remove(handle)
        return started

    def _create_and_start(
        self,
        run: RunRecord,
        spec: JobSpec,
        image_id: str,
        plans: list[MountPlan],
        given: LaunchSecrets,
        launch: str,
        created: list[str],
        leased: dict[str, int],
    ) -> tuple[str, dict[str, int]]:
        pinned = {p.host_port for p in spec.ports if p.host_port is not None}
        busy: set[int] = set()
        for _ in range(self.settings.port_attempts):
            ports = self.leaser.lease(run.id, spec.name, spec.ports, spec.timeout, frozenset(busy))
            leased.clear()
            leased.update(ports)
            container = container_spec(
                run,
                spec,
                name=container_name(spec.name, run.id, secrets.token_hex(3)),
                image_id=image_id,
                plans=plans,
                ports=ports,
                given=given,
                launch=launch,
                port_host_ip=self.settings.port_host_ip,
                extra_labels=self.settings.extra_labels,
                default_pids_limit=self.settings.default_pids_limit,
            )
            with self.engine_calls:
                container_id = self.engine.create(container)
            created.append(container_id)
            if not self.record_container(run.id, container_id, image_id):
                # Adopted meanwhile (we looked dead): the adopter starts it, not us.
                for port in ports.values():
                    self.leaser.release(run.id, port)
                leased.clear()
                raise TakenOverError(f"run {run.id} was adopted by another scheduler")
            try:
                with self.engine_calls:
                    self.engine.start(container_id)
                return container_id, ports
            except PortAllocatedError as error:
                # The engine has the final word: someone outside our ledger holds it.
                self.remove(container_id)
                created.remove(container_id)
                self.leaser.release(run.id)
                if error.port in pinned:
                    raise PinnedPortTakenError(
                        f"job {spec.name!r}: pinned host port {error.port}: {error}"
                    ) from None
                log.info("host port %s is taken outside our ledger; trying another", error.port)
                busy.add(error.port)
            except EngineUnavailableError:
                raise  # reconciled before the next try (see _start_container)
            except EngineError:
                # The engine refused the start (a command not in the image, say): the run
                # fails, and its container, which never ran, goes (at the run's end).
                if ports:
                    self.leaser.release(run.id)
                raise
        raise PortPoolExhaustedError(
            f"job {spec.name!r}: {len(busy)} pool ports in a row were taken outside our "
            f"ledger ({', '.join(map(str, sorted(busy)))})"
        )
