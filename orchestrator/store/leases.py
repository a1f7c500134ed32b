"""The port lease ledger: (host_ip, port, protocol) -> run, unique in the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.records import PortLease
from orchestrator.store.database import rowcount
from orchestrator.store.models import PortLeaseRow


class PortLeaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def leased_ports(self, protocol: str) -> set[int]:
        return set(
            self.session.scalars(select(PortLeaseRow.port).where(PortLeaseRow.protocol == protocol))
        )

    def holder(self, host_ip: str, port: int, protocol: str) -> PortLease | None:
        row = self.session.scalar(
            select(PortLeaseRow).where(
                PortLeaseRow.host_ip == host_ip,
                PortLeaseRow.port == port,
                PortLeaseRow.protocol == protocol,
            )
        )
        return _record(row) if row else None

    def try_lease(
        self,
        *,
        host_ip: str,
        port: int,
        protocol: str,
        container_port: int,
        run_id: int,
        job: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> bool:
        """Lease one port; False when someone holds it already (the database decides)."""
        try:
            with self.session.begin_nested():
                self.session.add(
                    PortLeaseRow(
                        host_ip=host_ip,
                        port=port,
                        protocol=protocol,
                        container_port=container_port,
                        run_id=run_id,
                        job_name=job,
                        leased_at=now,
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def release(self, run_id: int, port: int | None = None) -> int:
        query = delete(PortLeaseRow).where(PortLeaseRow.run_id == run_id)
        if port is not None:
            query = query.where(PortLeaseRow.port == port)
        return rowcount(self.session.execute(query))

    def release_stale(self, now: datetime) -> int:
        """Drop leases whose run has ended or vanished, or whose time ran out."""
        from orchestrator.records import FINISHED_STATUSES
        from orchestrator.store.models import RunRow

        live = select(RunRow.id).where(
            RunRow.status.not_in([status.value for status in FINISHED_STATUSES])
        )
        query = delete(PortLeaseRow).where(
            PortLeaseRow.run_id.is_(None)
            | PortLeaseRow.run_id.not_in(live)
            | (PortLeaseRow.expires_at < now)
        )
        return rowcount(self.session.execute(query))

    def list(self) -> list[PortLease]:
        rows = self.session.scalars(
            select(PortLeaseRow).order_by(PortLeaseRow.port, PortLeaseRow.protocol)
        )
        return [_record(row) for row in rows]


def _record(row: PortLeaseRow) -> PortLease:
    return PortLease(
        host_ip=row.host_ip,
        port=row.port,
        protocol=row.protocol,
        container_port=row.container_port,
        run_id=row.run_id,
        job=row.job_name,
        leased_at=row.leased_at,
        expires_at=row.expires_at,
    )
