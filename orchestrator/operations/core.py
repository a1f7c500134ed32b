"""The use cases together, for one actor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.operations.context import Audited, Backends
from orchestrator.operations.doctor import doctor_report, pool_report
from orchestrator.operations.jobs import JobOperations
from orchestrator.operations.runs import RunOperations
from orchestrator.records import AuditEntry, DeliveryStatus, Notification, PortLease


@dataclass
class Operations:
    backends: Backends
    actor: str
    jobs: JobOperations = field(init=False)
    runs: RunOperations = field(init=False)

    def __post_init__(self) -> None:
        audited = Audited(self.backends, self.actor)
        self.jobs = JobOperations(audited)
        self.runs = RunOperations(audited)

    def as_actor(self, actor: str) -> Operations:
        """The same use cases, audited under another name (one per API token)."""
        return Operations(self.backends, actor)

    def record(self, action: str, target: str | None, result: str) -> None:
        """Audit what the edge did that is no use case (a sign-in, a refused one)."""
        self.backends.store.audit(
            at=self.backends.clock(), actor=self.actor, action=action, target=target, result=result
        )

    def leases(self) -> list[PortLease]:
        """The host ports leased to runs now."""
        return self.backends.store.leases()

    def pool(self) -> dict[str, Any]:
        return pool_report(self.backends)

    def doctor(self) -> dict[str, Any]:
        return doctor_report(self.backends)

    def notifications(
        self,
        *,
        job: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 50,
    ) -> list[Notification]:
        """The outbox, newest first."""
        return self.backends.store.notifications(job=job, status=status, limit=limit)

    def test_notifications(
        self, job: str, public_url: str | None = None
    ) -> list[tuple[str, bool, str]]:
        """Send a `test` event to every receiver of the job now: (URL as written,
        delivered, the answer)."""
        from orchestrator.service.delivery import delivery_policy
        from orchestrator.service.senders import APPRISE, Outgoing, attempt

        spec = self.backends.store.job(job).spec
        launch = self.backends.launch_settings()
        policy = delivery_policy(launch)
        answers = []
        for target in spec.notify:
            outgoing = Outgoing(
                method="POST" if target.kind == "webhook" else APPRISE,
                url=target.url,
                event="test",
                payload={"job": job, "event": "test", "output_tail": []},
                delivery_id=0,
                secret_name=target.secret,
                job=job,
            )
            delivered, said = attempt(
                outgoing,
                self.backends.secrets_dir,
                public_url,
                policy,
                secret_policy=launch.secret_policy,
            )
            if target.kind == "apprise" and delivered:
                shown = "delivered"
            elif "status" in said:
                shown = f"HTTP {said['status']}"
            else:
                shown = f"not delivered: {said.get('error')}"
            answers.append((target.url, delivered, shown))
        return answers

    def audit_entries(self, *, limit: int = 50, before: int | None = None) -> list[AuditEntry]:
        """Newest first; the next page is `before=<the last one's id>`."""
        return self.backends.store.audit_entries(limit=limit, before=before)
