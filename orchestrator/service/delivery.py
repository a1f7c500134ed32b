"""Delivering the notification outbox: a few workers of the service take due
notifications (one scheduler each: a claim in the database), POST them, record every
attempt's answer, and try again with backoff until delivered or their time runs out.
A receiver that is down or slow holds one worker for at most the delivery's deadline;
fires never wait for deliveries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.errors import OrchestratorError
from orchestrator.policies import notify_events
from orchestrator.policies.secret_grants import SecretPolicy
from orchestrator.records import Notification
from orchestrator.runner.launch_settings import LaunchSettings
from orchestrator.service.outbound import DeliveryPolicy
from orchestrator.service.senders import REQUEST_TIMEOUT_SECONDS, Outgoing, attempt
from orchestrator.store.changes import ChangeFeed
from orchestrator.store.facade import Store

log = logging.getLogger(__name__)
# A claim outlives any one attempt; a scheduler that died mid-attempt loses it after.
CLAIM_SECONDS = 60.0


def delivery_policy(launch: LaunchSettings) -> DeliveryPolicy:
    """Where this process's deliveries may connect, from its settings."""
    return DeliveryPolicy(
        allowed=launch.notify_allowed_hosts,
        engine_address=launch.engine_address,
        deadline_seconds=REQUEST_TIMEOUT_SECONDS,
    )


@dataclass(eq=False, kw_only=True)
class DeliveryWorkers:
    store: Store
    owner: str
    secrets_dir: str
    clock: Callable[[], datetime]
    stopping: threading.Event
    workers: int = 4
    poll_seconds: float = 0.5
    public_url: str | None = None
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    secret_policy: SecretPolicy | None = None
    # Told of new notifications: an empty outbox is read again when one is queued, when
    # one is next due, or after idle_poll_seconds, not every poll_seconds.
    changes: ChangeFeed | None = None
    idle_poll_seconds: float = 30.0

    def __post_init__(self) -> None:
        self._threads: list[threading.Thread] = []
        # The turn to look in the outbox: one worker at a time, and one that found it
        # empty keeps the turn while it waits, so an idle outbox is read once per
        # poll_seconds, not once per worker (reads that cost a busy service's launches).
        # A worker that claimed one gives the turn up before it delivers.
        self._turn = threading.Lock()

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"deliveries-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            if not self._turn.acquire(timeout=self.poll_seconds):
                continue
            try:
                seen = self.changes.generation() if self.changes is not None else 0
                item = self._claim_due()
                if item is None:
                    self.stopping.wait(self.poll_seconds)
                    self._wait_for_work(seen)
            finally:
                self._turn.release()
            if item is None:
                continue
            try:
                self._deliver(item)
            except OrchestratorError as error:  # its claim runs out: tried again then
                log.warning("deliveries: %s (will retry)", error)
            except Exception:
                log.exception("delivering notification %s failed (will retry)", item.id)

    def _wait_for_work(self, seen: int) -> None:
        """With nothing due now: wait for a change or the outbox's next due time."""
        if self.changes is None or self.stopping.is_set():
            return
        try:
            _, due = self.store.next_wakeups()
        except OrchestratorError as error:
            log.warning("deliveries: %s (will retry)", error)
            return
        wait = self.idle_poll_seconds
        if due is not None:
            wait = min(wait, (due - self.clock()).total_seconds())
        if wait > 0:
            self.changes.wait(seen, wait)

    def _claim_due(self) -> Notification | None:
        """One due notification, claimed for this scheduler; None when there is none
        (or the database did not answer: logged, and tried again at the next turn)."""
        now = self.clock()
        try:
            for item in self.store.due_notifications(now, limit=10):
                until = now + timedelta(seconds=CLAIM_SECONDS)
                if self.store.claim_notification(item.id, self.owner, now, until):
                    return item
        except OrchestratorError as error:
            log.warning("deliveries: %s (will retry)", error)
        except Exception:
            log.exception("deliveries failed (will retry)")
        return None

    def _deliver(self, item: Notification) -> None:
        started = self.clock()
        delivered, said = attempt(
            Outgoing.of(item),
            self.secrets_dir,
            self.public_url,
            self.policy,
            started.timestamp(),
            self.secret_policy,
        )
        answer: dict[str, object] = {"at": started.isoformat(), **said}
        now = self.clock()
        retry_at = now + timedelta(seconds=notify_events.retry_delay(item.attempts + 1))
        recorded = self.store.record_delivery(
            item.id, answer=answer, delivered=delivered, now=now, retry_at=retry_at
        )
        if delivered:
            log.info("notification %s (%s of run %s) delivered", item.id, item.event, item.run_id)
        else:
            log.warning(
                "notification %s (%s of run %s) not delivered: %s; %s",
                item.id,
                item.event,
                item.run_id,
                answer.get("error") or f"HTTP {answer.get('status')}",
                "given up" if recorded.status.value == "failed" else "will try again",
            )
