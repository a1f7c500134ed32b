"""Leasing host ports: the database ledger first, the engine's word last.

We never test a port by binding it ourselves: under Docker-outside-of-Docker our network
namespace is not the host's. We skip ports the ledger holds and ports the engine says
other containers publish; if the engine still answers "port is already allocated" at
start, the caller marks that port busy and asks for the next one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.clock import Clock, utc_now
from orchestrator.engine import Engine
from orchestrator.ports import (
    PinnedPortTakenError,
    PortPoolExhaustedError,
    PortRange,
    candidate_ports,
)
from orchestrator.spec import PortSpec
from orchestrator.store.facade import Store

# A lease outlives a run that nobody ended (a killed scheduler) by this much at most;
# the service reconciles sooner at start-up.
LEASE_GRACE = timedelta(minutes=10)
DEFAULT_LEASE = timedelta(hours=24)


@dataclass(eq=False)
class PortLeaser:
    store: Store
    engine: Engine
    pool: PortRange
    host_ip: str
    clock: Clock = utc_now

    def _expiry(self, now: datetime, timeout: timedelta | None) -> datetime:
        return now + (timeout or DEFAULT_LEASE) + LEASE_GRACE

    def lease(
        self,
        run_id: int,
        job: str,
        ports: Sequence[PortSpec],
        timeout: timedelta | None,
        busy: frozenset[int] = frozenset(),
    ) -> dict[str, int]:
        """Lease a host port for each port spec; returns {"8080/tcp": 20001}.

        Each lease commits at once, so concurrent runs and schedulers see it. On failure
        the leases this call made are released.
        """
        published = self.engine.published_ports() if ports else set()
        leased: dict[str, int] = {}
        try:
            for spec in ports:
                leased[spec.key] = self._lease_one(run_id, job, spec, timeout, published, busy)
        except BaseException:
            self.release(run_id)
            raise
        return leased

    def _lease_one(
        self,
        run_id: int,
        job: str,
        spec: PortSpec,
        timeout: timedelta | None,
        published: set[tuple[str, int, str]],
        busy: frozenset[int],
    ) -> int:
        engine_taken = {port for _, port, protocol in published if protocol == spec.protocol}
        now = self.clock()
        if spec.host_port is not None:
            if spec.host_port in engine_taken or spec.host_port in busy:
                raise PinnedPortTakenError(
                    f"job {job!r}: pinned host port {spec.host_port}/{spec.protocol} is "
                    "already published by another container"
                )
            if not self._try(run_id, job, spec, spec.host_port, now, timeout):
                holder = self.store.lease_holder(self.host_ip, spec.host_port, spec.protocol)
                by = f" by run {holder.run_id} of job {holder.job!r}" if holder else ""
                raise PinnedPortTakenError(
                    f"job {job!r}: pinned host port {spec.host_port}/{spec.protocol} is leased{by}"
                )
            return spec.host_port
        ledger_taken = self.store.leased_ports(spec.protocol)
        taken = ledger_taken | engine_taken | set(busy)
        start = random.randint(self.pool.first, self.pool.last)
        for port in candidate_ports(self.pool, taken, start):
            if self._try(run_id, job, spec, port, now, timeout):
                return port
        raise PortPoolExhaustedError(
            f"job {job!r}: no free host port in the pool {self.pool} for {spec.key} "
            f"({len(ledger_taken & set(range(self.pool.first, self.pool.last + 1)))} leased, "
            f"{len([p for p in engine_taken if p in self.pool])} published by other containers)"
        )

    def _try(
        self,
        run_id: int,
        job: str,
        spec: PortSpec,
        port: int,
        now: datetime,
        timeout: timedelta | None,
    ) -> bool:
        return self.store.try_lease(
            host_ip=self.host_ip,
            port=port,
            protocol=spec.protocol,
            container_port=spec.container_port,
            run_id=run_id,
            job=job,
            now=now,
            expires_at=self._expiry(now, timeout),
        )

    def release(self, run_id: int, port: int | None = None) -> None:
        self.store.release_leases(run_id, port)
